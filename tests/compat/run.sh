#!/usr/bin/env bash
# SDK wire-compatibility check: runs the official ORY Hydra v1.9.2 Python SDK
# against a freshly started release binary on a fresh SQLite file, loopback only:
# admin/JWK/discovery calls, then a full authorization-code + PKCE flow in which
# the SDK's AdminApi plays the login and consent app, then the session and
# logout admin APIs (see flow_compat.py).
# Prerequisite: cargo build --release --locked
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=target/release/portcullis
VENV=target/compat-venv
[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }

if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
# jwcrypto verifies the ID token independently of the server's own JOSE code.
"$VENV/bin/pip" install -q --disable-pip-version-check \
  ory-hydra-client==1.9.2 'jwcrypto>=1.5,<2' 'requests>=2.31,<3'

# shellcheck source=../lib/server.sh
source tests/lib/server.sh
PUBLIC_PORT=$(free_port)
ADMIN_PORT=$(free_port "$PUBLIC_PORT")
# The login/consent/logout UI port: nothing listens there; the check reads the
# challenges and redirects from the Location headers and answers with the SDK.
UI_PORT=$(free_port "$PUBLIC_PORT" "$ADMIN_PORT")
ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
PUBLIC_URL="http://127.0.0.1:$PUBLIC_PORT"
LOGIN_URL="http://127.0.0.1:$UI_PORT/login"
CONSENT_URL="http://127.0.0.1:$UI_PORT/consent"
LOGOUT_URL="http://127.0.0.1:$UI_PORT/logout"
POST_LOGOUT_URL="http://127.0.0.1:$UI_PORT/logged-out"

WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER_PID=
trap stop_server EXIT

URLS_LOGIN="$LOGIN_URL" URLS_CONSENT="$CONSENT_URL" \
URLS_LOGOUT="$LOGOUT_URL" URLS_POST_LOGOUT_REDIRECT="$POST_LOGOUT_URL" \
SECRETS_SYSTEM=ci-secret-0123456789abcdef \
  start_server "sqlite://$WORK/compat.db" "$LOG" --dev
wait_ready "$LOG"

status=0
# Bounded: the SDK sets no HTTP timeouts, so a hung server must not hang CI.
timeout 300 "$VENV/bin/python" tests/compat/sdk_compat.py \
  "$ADMIN_URL" "$PUBLIC_URL" "$LOGIN_URL" "$CONSENT_URL" "$LOGOUT_URL" "$POST_LOGOUT_URL" \
  || status=$?
if [[ $status -eq 124 ]]; then echo "compat check timed out after 300 s" >&2; fi
if [[ $status -ne 0 ]]; then
  echo "--- server log ---" >&2
  cat "$LOG" >&2
fi
exit $status
