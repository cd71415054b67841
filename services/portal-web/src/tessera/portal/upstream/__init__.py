"""The services the portal calls, one thin client module each (`auth`, `licensing`,
`billing`), over one HTTP base (`base`) that forwards who is asking and maps failures; and
their readiness probes (`health`), which `/readyz` runs."""
