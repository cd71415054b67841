# Tessera: one Dockerfile, one image target per service.
#
#   docker build --target billing    -t tessera/billing .
#   docker build --target auth       -t tessera/auth .
#   docker build --target licensing  -t tessera/licensing .
#   docker build --target webhooks   -t tessera/webhooks .
#   docker build --target portal-web -t tessera/portal-web .
#   docker build --target site       -t tessera/site .
#
# (docker-compose.yml builds them all, plus the `otel-collector` target at the end.)
#
# Each service target holds only its own virtualenv: its package, tessera-shared and their
# third-party dependencies, installed non-editable from uv.lock (`--frozen`), so the image
# carries no source tree, no dev tools and no uv. Every target runs as the unprivileged user
# `tessera` and answers a HEALTHCHECK on /healthz. The entrypoint is the service's operator
# CLI, so `docker run IMAGE migrate` (or `build` for the site) works as well as `serve`.

# --------------------------------------------------------------------------- base images
FROM python:3.11.14-slim-bookworm AS python-base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# --------------------------------------------------------------------------- builder
FROM python-base AS builder

RUN pip install --no-cache-dir uv==0.13.9

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/venv

WORKDIR /src

# Only the workspace's metadata first: uv needs every member's pyproject.toml to read the
# lock, and the third-party layer below stays cached until one of these files changes.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/auth/pyproject.toml services/auth/
COPY services/billing/pyproject.toml services/billing/
COPY services/licensing/pyproject.toml services/licensing/
COPY services/webhooks/pyproject.toml services/webhooks/
COPY services/portal-web/pyproject.toml services/portal-web/
COPY services/site/pyproject.toml services/site/
COPY devtools/pyproject.toml devtools/
COPY clients/licensing-client/pyproject.toml clients/licensing-client/
COPY clients/python/pyproject.toml clients/python/

# The shared kernel's source, which every service installs.
COPY shared/src shared/src

# --------------------------------------------------------------------------- per-service venvs
FROM builder AS billing-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tessera-billing
COPY services/billing/src services/billing/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tessera-billing

FROM builder AS auth-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tessera-auth
COPY services/auth/src services/auth/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tessera-auth

FROM builder AS licensing-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tessera-licensing
COPY services/licensing/src services/licensing/src
COPY clients/licensing-client/src clients/licensing-client/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tessera-licensing

FROM builder AS webhooks-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tessera-webhooks
COPY services/webhooks/src services/webhooks/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tessera-webhooks

FROM builder AS portal-web-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tessera-portal
COPY services/portal-web/src services/portal-web/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tessera-portal

FROM builder AS site-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tessera-site
COPY services/site/src services/site/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tessera-site

# --------------------------------------------------------------------------- runtime base
FROM python-base AS runtime

RUN groupadd --system --gid 10001 tessera \
 && useradd --system --uid 10001 --gid tessera --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin tessera

WORKDIR /app
ENV PATH=/app/venv/bin:$PATH \
    TESSERA_ENV=production

# --------------------------------------------------------------------------- service targets
FROM runtime AS billing
COPY --from=billing-build /app/venv /app/venv
# The product catalog billing seeds its `catalog` table from (data, not code).
COPY deploy/catalog.json /app/deploy/catalog.json
ENV TESSERA_BILLING_HOST=0.0.0.0 \
    TESSERA_BILLING_PORT=8082 \
    TESSERA_BILLING_CATALOG_FILE=/app/deploy/catalog.json
USER tessera
EXPOSE 8082
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TESSERA_BILLING_PORT'], timeout=4)"]
ENTRYPOINT ["tessera-billing"]
CMD ["serve", "--host", "0.0.0.0"]

FROM runtime AS auth
COPY --from=auth-build /app/venv /app/venv
ENV TESSERA_AUTH_HOST=0.0.0.0 \
    TESSERA_AUTH_PORT=8083
USER tessera
EXPOSE 8083
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TESSERA_AUTH_PORT'], timeout=4)"]
ENTRYPOINT ["tessera-auth"]
CMD ["serve", "--host", "0.0.0.0"]

FROM runtime AS licensing
COPY --from=licensing-build /app/venv /app/venv
ENV TESSERA_LICENSING_HOST=0.0.0.0 \
    TESSERA_LICENSING_PORT=8084
USER tessera
EXPOSE 8084
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TESSERA_LICENSING_PORT'], timeout=4)"]
ENTRYPOINT ["tessera-licensing"]
CMD ["serve", "--host", "0.0.0.0"]

FROM runtime AS webhooks
COPY --from=webhooks-build /app/venv /app/venv
ENV TESSERA_WEBHOOKS_HOST=0.0.0.0 \
    TESSERA_WEBHOOKS_PORT=8085
USER tessera
EXPOSE 8085
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TESSERA_WEBHOOKS_PORT'], timeout=4)"]
ENTRYPOINT ["tessera-webhooks"]
CMD ["serve", "--host", "0.0.0.0"]

FROM runtime AS portal-web
COPY --from=portal-web-build /app/venv /app/venv
ENV TESSERA_PORTAL_HOST=0.0.0.0 \
    TESSERA_PORTAL_PORT=8081
USER tessera
EXPOSE 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TESSERA_PORTAL_PORT'], timeout=4)"]
ENTRYPOINT ["tessera-portal"]
CMD ["serve", "--host", "0.0.0.0"]

FROM runtime AS site
COPY --from=site-build /app/venv /app/venv
# Read when the site renders: the markdown docs (the integrator reference) and billing's
# catalog (the price), so neither can drift from what the site says.
COPY docs /app/docs
COPY deploy/catalog.json /app/deploy/catalog.json
# The site renders its pages at start-up with this environment's links (TESSERA_SITE_*_URL),
# into a folder the unprivileged user owns.
RUN install -d -o tessera -g tessera /app/dist
ENV TESSERA_SITE_HOST=0.0.0.0 \
    TESSERA_SITE_PORT=8080 \
    TESSERA_SITE_DIST_DIR=/app/dist \
    TESSERA_SITE_DOCS_DIR=/app/docs \
    TESSERA_SITE_CATALOG_FILE=/app/deploy/catalog.json
USER tessera
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['TESSERA_SITE_PORT'], timeout=4)"]
ENTRYPOINT ["tessera-site"]
CMD ["serve", "--host", "0.0.0.0"]

# --------------------------------------------------------------------------- otel-collector
# The upstream collector image is built FROM scratch: no shell, no wget, so Docker cannot
# probe its health_check extension. This target adds one static busybox binary for that
# probe and nothing else; the collector itself is the pinned upstream image, unchanged.
FROM busybox:1.37.0-musl AS busybox

FROM otel/opentelemetry-collector-contrib:0.120.0 AS otel-collector
COPY --from=busybox /bin/busybox /usr/local/bin/busybox
EXPOSE 4318 13133
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "--spider", "http://127.0.0.1:13133/"]
