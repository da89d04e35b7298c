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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PUBLIC_PORT=$(free_port)
ADMIN_PORT=$(free_port)
while [[ "$ADMIN_PORT" == "$PUBLIC_PORT" ]]; do ADMIN_PORT=$(free_port); done
# The login/consent/logout UI port: nothing listens there; the check reads the
# challenges and redirects from the Location headers and answers with the SDK.
UI_PORT=$(free_port)
while [[ "$UI_PORT" == "$PUBLIC_PORT" || "$UI_PORT" == "$ADMIN_PORT" ]]; do UI_PORT=$(free_port); done
ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
PUBLIC_URL="http://127.0.0.1:$PUBLIC_PORT"
LOGIN_URL="http://127.0.0.1:$UI_PORT/login"
CONSENT_URL="http://127.0.0.1:$UI_PORT/consent"
LOGOUT_URL="http://127.0.0.1:$UI_PORT/logout"
POST_LOGOUT_URL="http://127.0.0.1:$UI_PORT/logged-out"

WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do   # up to 10 s for a graceful stop
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DSN="sqlite://$WORK/compat.db" \
SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT="$PUBLIC_PORT" \
SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT="$ADMIN_PORT" \
URLS_SELF_ISSUER="$PUBLIC_URL/" \
URLS_LOGIN="$LOGIN_URL" URLS_CONSENT="$CONSENT_URL" \
URLS_LOGOUT="$LOGOUT_URL" URLS_POST_LOGOUT_REDIRECT="$POST_LOGOUT_URL" \
SECRETS_SYSTEM=ci-secret-0123456789abcdef \
  "$BIN" serve all --dev >"$LOG" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 600); do   # 600 x 0.1 s = 60 s
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  if curl -fs -o /dev/null "$ADMIN_URL/health/ready"; then ready=1; break; fi
  sleep 0.1
done
if [[ $ready -ne 1 ]]; then
  echo "server did not become ready within 60 s; log:" >&2
  cat "$LOG" >&2
  exit 1
fi

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
