#!/bin/sh
# Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d).
#
# One database per service that owns one, and one login role per database that owns it
# and nothing else: auth, billing, licensing and webhooks never share a role or read each other's
# data (docs/architecture.md: "a service never reads another service's database").
# The roles' passwords come from the container's environment (AUTH_DB_PASSWORD,
# BILLING_DB_PASSWORD, LICENSING_DB_PASSWORD, WEBHOOKS_DB_PASSWORD), set in docker-compose.yml from .env.
set -eu

: "${AUTH_DB_PASSWORD:?AUTH_DB_PASSWORD is not set}"
: "${BILLING_DB_PASSWORD:?BILLING_DB_PASSWORD is not set}"
: "${LICENSING_DB_PASSWORD:?LICENSING_DB_PASSWORD is not set}"
: "${WEBHOOKS_DB_PASSWORD:?WEBHOOKS_DB_PASSWORD is not set}"

# psql variables (:'name') quote the passwords as SQL literals, whatever they contain.
psql --no-psqlrc -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v auth_password="$AUTH_DB_PASSWORD" \
    -v billing_password="$BILLING_DB_PASSWORD" \
    -v licensing_password="$LICENSING_DB_PASSWORD" \
    -v webhooks_password="$WEBHOOKS_DB_PASSWORD" <<'SQL'
-- No role may connect to a database it was not granted, nor create objects in the
-- default database's public schema.
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE ROLE auth LOGIN PASSWORD :'auth_password';
CREATE DATABASE auth OWNER auth;
REVOKE ALL ON DATABASE auth FROM PUBLIC;

CREATE ROLE billing LOGIN PASSWORD :'billing_password';
CREATE DATABASE billing OWNER billing;
REVOKE ALL ON DATABASE billing FROM PUBLIC;

CREATE ROLE licensing LOGIN PASSWORD :'licensing_password';
CREATE DATABASE licensing OWNER licensing;
REVOKE ALL ON DATABASE licensing FROM PUBLIC;

CREATE ROLE webhooks LOGIN PASSWORD :'webhooks_password';
CREATE DATABASE webhooks OWNER webhooks;
REVOKE ALL ON DATABASE webhooks FROM PUBLIC;
SQL
