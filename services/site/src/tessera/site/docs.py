"""The integrator reference: the repo's own markdown docs, rendered at build time.

The services' engineers write `docs/*.md` beside their code; the site renders the same files,
so the public reference cannot drift from them. A doc that does not exist yet (its service
is still being built, or the build runs in a container without the docs folder) is simply
left out, except the event catalogue, which falls back to one generated from the payload
models in `tessera.shared.events`, the contracts themselves.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup, escape
from pydantic import BaseModel

from tessera.shared.events import auth, billing, licensing
from tessera.shared.events.envelope import Event

REFERENCE_ROOT = "/docs/reference"


@dataclass(frozen=True)
class DocSource:
    slug: str
    filename: str
    title: str
    summary: str

    @property
    def path(self) -> str:
        return f"{REFERENCE_ROOT}/{self.slug}/"


# Order is the order on the docs index. Add a doc here and it is published when it exists.
SOURCES = (
    DocSource(
        "licensing-client",
        "licensing-client.md",
        "Licensing client protocol",
        "The desktop protocol and the lease format, field by field, with test vectors.",
    ),
    DocSource(
        "events",
        "events.md",
        "Events",
        "Every event the services publish on NATS JetStream: subjects, producers, consumers, fields.",
    ),
    DocSource(
        "architecture",
        "architecture.md",
        "Architecture",
        "How the services are built, configured and wired together.",
    ),
)


@dataclass(frozen=True)
class RenderedDoc:
    slug: str
    path: str
    title: str
    summary: str
    html: Markup
    toc: tuple[tuple[str, str], ...]
    provenance: str


class _SiteLinks(Treeprocessor):
    """Points links between docs at their pages on the site; unwraps links to repo files
    the site does not publish, and drops images (they would be missing files, or requests
    to another origin)."""

    def __init__(self, md: markdown.Markdown, published: Mapping[str, str]) -> None:
        super().__init__(md)
        self.published = published

    def run(self, root: ET.Element) -> None:
        for element in root.iter():
            if element.tag == "a":
                self._relink(element)
            elif element.tag == "img":
                alt = element.get("alt", "")
                element.attrib.clear()
                element.tag = "span"
                element.text = alt

    def _relink(self, element: ET.Element) -> None:
        href = element.get("href", "")
        if not href or href.startswith(("#", "http://", "https://", "mailto:")):
            return
        target, _, fragment = href.partition("#")
        page = self.published.get(posixpath.normpath(target))
        if page:
            element.set("href", f"{page}#{fragment}" if fragment else page)
            return
        element.attrib.clear()
        element.tag = "span"


class _TwoSpaceLists(Preprocessor):
    """The repo's docs nest lists by two spaces, as GitHub renders them; Python-Markdown
    wants four. Doubling indentation keeps the nesting the authors see. Runs after fenced
    code is stashed, so code blocks keep their own spacing."""

    def run(self, lines: list[str]) -> list[str]:
        return [_double_indent(line) for line in lines]


def _double_indent(line: str) -> str:
    stripped = line.lstrip(" ")
    return " " * (2 * (len(line) - len(stripped))) + stripped


class _SiteLinksExtension(Extension):
    def __init__(self, published: Mapping[str, str]) -> None:
        super().__init__()
        self.published = published

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # After "inline" (priority 20), so links exist; before "prettify" (10).
        md.treeprocessors.register(_SiteLinks(md, self.published), "site_links", 15)
        # Between fenced code (25) and raw HTML blocks (20).
        md.preprocessors.register(_TwoSpaceLists(md), "two_space_lists", 22)


def _toc_entries(tokens: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """Second-level headings (the page's sections), under the document's one h1."""
    entries: list[tuple[str, str]] = []
    for token in tokens:
        if token["level"] == 1:
            entries.extend((child["id"], child["name"]) for child in token["children"])
        elif token["level"] == 2:
            entries.append((token["id"], token["name"]))
    return tuple(entries)


def render_markdown(
    text: str, published: Mapping[str, str]
) -> tuple[str | None, Markup, tuple[tuple[str, str], ...]]:
    """(first h1, body html without that h1, section anchors)."""
    md = markdown.Markdown(
        extensions=["extra", "sane_lists", "toc", _SiteLinksExtension(published)],
        extension_configs={"toc": {"toc_depth": "1-3"}},
        output_format="html",
    )
    body = md.convert(text)
    title = None
    tokens: list[dict[str, Any]] = getattr(md, "toc_tokens", [])
    if tokens and tokens[0]["level"] == 1:
        first = tokens[0]
        title = first["name"]
        start = body.find(f'<h1 id="{first["id"]}">')
        end = body.find("</h1>", start)
        if start != -1 and end != -1:
            body = body[:start] + body[end + len("</h1>") :]
    return title, Markup(body.strip()), _toc_entries(tokens)  # noqa: S704 - our own docs


def _substitute(text: str, replacements: Mapping[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def render_reference(docs_dir: Path, dev_urls: Mapping[str, str]) -> list[RenderedDoc]:
    """Every source doc that exists, plus the generated event catalogue when events.md
    does not. `dev_urls` maps the dev addresses the docs are written with to this build's."""
    present = [s for s in SOURCES if (docs_dir / s.filename).is_file()]
    published = {s.filename: s.path for s in present}
    rendered = []
    for source in SOURCES:
        if source in present:
            text = _substitute((docs_dir / source.filename).read_text(encoding="utf-8"), dev_urls)
            title, html, toc = render_markdown(text, published)
            provenance = f"Rendered from docs/{source.filename} in the Tessera repository."
        elif source.slug == "events":
            title, html, toc = None, generated_event_catalogue(), _event_toc()
            provenance = "Generated from the payload models in tessera.shared.events."
        else:
            continue
        rendered.append(
            RenderedDoc(
                slug=source.slug,
                path=source.path,
                title=title or source.title,
                summary=source.summary,
                html=html,
                toc=toc,
                provenance=provenance,
            )
        )
    return rendered


# ---------------------------------------------------------------- generated event catalogue


def event_classes() -> list[type[Event]]:
    """Every concrete event: a subclass of `Event` that declares its own subject."""
    found: list[type[Event]] = []
    for module in (billing, auth, licensing):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Event)
                and "subject" in value.__dict__
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return sorted(found, key=lambda cls: cls.subject)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("uuid.", "").replace("datetime.", "")


def _anchor(subject: str) -> str:
    return subject.replace(".", "-")


def _event_toc() -> tuple[tuple[str, str], ...]:
    return tuple((_anchor(cls.subject), cls.subject) for cls in event_classes())


def _fields_table(model: type[BaseModel]) -> str:
    rows = []
    for name, info in model.model_fields.items():
        if name in Event.model_fields:
            continue  # the envelope is described once, above
        meaning = info.description or ""
        rows.append(
            f"<tr><td><code>{escape(name)}</code></td><td><code>{escape(_type_name(info.annotation))}</code></td>"
            f"<td>{'yes' if info.is_required() else 'no'}</td><td>{escape(meaning)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def generated_event_catalogue() -> Markup:
    parts = [
        "<p>Each event is JSON on NATS JetStream, one stream per producer. Every payload also "
        "carries the envelope: <code>event_id</code> (UUIDv7), <code>occurred_at</code> and "
        "<code>producer</code>.</p>"
    ]
    for cls in event_classes():
        doc = " ".join((cls.__doc__ or "").split())
        parts.append(
            f'<h2 id="{_anchor(cls.subject)}"><code>{escape(cls.subject)}</code></h2>'
            f"<p>{escape(doc)}</p>{_fields_table(cls)}"
        )
    return Markup("\n".join(parts))  # noqa: S704 - every interpolated value is escaped
