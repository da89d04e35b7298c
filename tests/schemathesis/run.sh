#!/usr/bin/env bash
# Schema fuzzing: schemathesis (PyPI) generates requests from Hydra v1.9.2's own API description
# (api.swagger.json, copied here from the Hydra v1.9.2 release) and runs them against the release
# binary on PostgreSQL, on both listeners. Checks: not_a_server_error (no 5xx for any input) and
# response_schema_conformance (bodies match Hydra's documented schemas). Zero failures expected.
#
# Prerequisites: cargo build --release --locked; PostgreSQL reachable at $SCHEMA_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/portcullis_schema; the script recreates it).
# Runtime is kept to a few minutes with --max-examples.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=target/release/portcullis
VENV=target/schemathesis-venv
SPEC=tests/schemathesis/api.swagger.json
DB_URL=${SCHEMA_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portcullis_schema}
MAX_EXAMPLES=${SCHEMA_MAX_EXAMPLES:-25}
[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }

if [[ ! -x "$VENV/bin/schemathesis" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'schemathesis==4.32.5'
fi

DB_NAME=${DB_URL##*/}
DB_BASE=${DB_URL%/*}
dropdb --if-exists -d "$DB_BASE/postgres" "$DB_NAME" 2>/dev/null \
  || psql -q "$DB_BASE/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)"
psql -q "$DB_BASE/postgres" -c "CREATE DATABASE $DB_NAME"
DSN="$DB_URL" "$BIN" migrate sql -e --yes >/dev/null

# shellcheck source=../lib/server.sh
source tests/lib/server.sh
PUBLIC_PORT=$(free_port)
ADMIN_PORT=$(free_port "$PUBLIC_PORT")

WORK=$(mktemp -d)
SERVER_PID=
trap stop_server EXIT

URLS_LOGIN="http://127.0.0.1:9/login" URLS_CONSENT="http://127.0.0.1:9/consent" \
SECRETS_SYSTEM=schema-secret-0123456789abcdef \
LOG_LEVEL=warn \
  start_server "$DB_URL" "$WORK/server.log" --dangerous-force-http
wait_ready "$WORK/server.log"

# Deliberate deviations, each excluded explicitly:
# - /metrics/prometheus: Prometheus text exposition, which the spec does not describe at all.
# - /oauth2/auth, /oauth2/sessions/logout: browser endpoints answering with redirects and HTML
#   pages (as Hydra does); the spec documents no response bodies for them.
EXCLUDE=(
  --exclude-path /metrics/prometheus
  --exclude-path /oauth2/auth
  --exclude-path /oauth2/sessions/logout
)
COMMON=(
  --checks not_a_server_error,response_schema_conformance
  --max-examples "$MAX_EXAMPLES"
  --seed 7
  --no-color
)

status=0
echo "==> admin listener"
"$VENV/bin/schemathesis" run "$SPEC" --url "http://127.0.0.1:$ADMIN_PORT" \
  --include-tag admin "${EXCLUDE[@]}" "${COMMON[@]}" || status=1
echo "==> public listener"
"$VENV/bin/schemathesis" run "$SPEC" --url "http://127.0.0.1:$PUBLIC_PORT" \
  --include-tag public "${EXCLUDE[@]}" "${COMMON[@]}" || status=1
if [[ $status -ne 0 ]]; then
  echo "--- server log (last 50 lines)"; tail -50 "$WORK/server.log"
fi
exit $status
