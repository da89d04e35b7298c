# Shell helpers shared by the scripts that start the release binary ($BIN) and test it live.
# Source after `cd` to the repository root; they use $BIN, $WORK, $SERVER_PID and the ports.

# A free loopback TCP port, different from every port given as an argument.
free_port() {
  local port
  while :; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    [[ " $* " == *" $port "* ]] || break
  done
  echo "$port"
}

# Starts `$BIN serve all <args>` on database $1, output to $2: both listeners on 127.0.0.1 at
# $PUBLIC_PORT and $ADMIN_PORT, the issuer on the public port. Further settings come from the
# caller's environment (e.g. `SECRETS_SYSTEM=... start_server ...`).
start_server() {
  local dsn=$1 log=$2
  shift 2
  DSN="$dsn" \
  SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT="$PUBLIC_PORT" \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT="$ADMIN_PORT" \
  URLS_SELF_ISSUER="http://127.0.0.1:$PUBLIC_PORT/" \
    "$BIN" serve all "$@" >"$log" 2>&1 &
  SERVER_PID=$!
}

# Waits up to 60 s for the admin listener's /health/ready while the server lives; if it never
# answers, prints the server log $1 and exits 1.
wait_ready() {
  local log=$1
  for _ in $(seq 1 600); do   # 600 x 0.1 s = 60 s
    kill -0 "$SERVER_PID" 2>/dev/null || break
    curl -fs -o /dev/null "http://127.0.0.1:$ADMIN_PORT/health/ready" && return 0
    sleep 0.1
  done
  echo "server did not become ready within 60 s; log:" >&2
  cat "$log" >&2
  exit 1
}

# Stops the server (TERM, up to 10 s for a graceful stop, then KILL) and removes $WORK.
# Installed as the EXIT trap by the scripts.
stop_server() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
