#!/usr/bin/env bash
# Load benchmark of the release binary on PostgreSQL, plus start-to-ready
# time on SQLite. Everything binds to 127.0.0.1.
#
# Needs: target/release/portcullis (cargo build --release --locked), a running
# PostgreSQL, curl, python3, createdb/psql, and the `wrk` load generator
# (Debian package `wrk`; installed with apt-get when missing).
#
# Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portcullis_bench)
#      BENCH_DURATION (default 10s), BENCH_CONCURRENCY (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release/portcullis
DB_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portcullis_bench}
DURATION=${BENCH_DURATION:-10s}
CONC=${BENCH_CONCURRENCY:-64}
PUBLIC=http://127.0.0.1:14444
ADMIN=http://127.0.0.1:14445
SECRET=bench-secret-0123456789abcdef

[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing the Debian package" >&2
  apt-get install -y -q wrk >/dev/null
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server DSN LOG -> sets SERVER_PID
start_server() {
  DSN="$1" SECRETS_SYSTEM="$SECRET" \
  SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT=14444 \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT=14445 \
  URLS_SELF_ISSUER="$PUBLIC/" \
    "$BIN" serve all --dev >"$2" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
}

stop_server() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# wait_ready LOG: polls admin /health/ready every 5 ms (max 120 s)
wait_ready() {
  local deadline=$((SECONDS + 120))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN/health/ready")" == 200 ]]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null || (( SECONDS > deadline )); then
      echo "server failed to become ready; log:" >&2; cat "$1" >&2; exit 1
    fi
    sleep 0.005
  done
}

rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
now_ms() { python3 -c 'import time; print(int(time.monotonic()*1000))'; }
ms_since() { python3 -c "import time,sys; print(int(time.monotonic()*1000) - int(sys.argv[1]))" "$1"; }

# ------------------------------------------------------------------ startup (SQLite)
echo "==> start-to-ready on SQLite"
SQLITE_DSN="sqlite://$WORK/bench.sqlite?mode=rwc"
declare -a STARTUP
for run in 1 2; do
  t0=$(now_ms)
  start_server "$SQLITE_DSN" "$WORK/sqlite-$run.log"
  wait_ready "$WORK/sqlite-$run.log"
  STARTUP[$run]=$(ms_since "$t0")
  stop_server "$SERVER_PID"
done

# ------------------------------------------------------------------ load (PostgreSQL)
echo "==> PostgreSQL database"
DB_NAME=${DB_URL##*/}; DB_NAME=${DB_NAME%%\?*}
ADMIN_DB_URL=${DB_URL%/*}/postgres
if ! psql "$ADMIN_DB_URL" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
  createdb --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
fi
DSN="$DB_URL" "$BIN" migrate sql -e --yes

start_server "$DB_URL" "$WORK/pg.log"
wait_ready "$WORK/pg.log"
PG_PID=$SERVER_PID

CLIENT_ID="bench-$(date +%s)-$$"
curl -fsS -o /dev/null -X POST "$ADMIN/clients" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CLIENT_ID\",\"redirect_uris\":[\"https://example.com/cb\"],\"grant_types\":[\"authorization_code\"],\"scope\":\"openid\"}"

IDLE_RSS=$(rss_kb "$PG_PID" VmRSS)

declare -a NAMES=("admin GET /clients/{id}" "GET /.well-known/jwks.json" "GET /.well-known/openid-configuration" "GET /health/alive")
declare -a URLS=("$ADMIN/clients/$CLIENT_ID" "$PUBLIC/.well-known/jwks.json" "$PUBLIC/.well-known/openid-configuration" "$PUBLIC/health/alive")
for i in "${!URLS[@]}"; do
  echo "==> wrk ${NAMES[$i]} (-c $CONC -d $DURATION)"
  wrk -t 2 -c "$CONC" -d "$DURATION" --latency "${URLS[$i]}" >"$WORK/wrk-$i.txt"
done

PEAK_RSS=$(rss_kb "$PG_PID" VmHWM)
curl -fsS -o /dev/null -X DELETE "$ADMIN/clients/$CLIENT_ID" || true

# ------------------------------------------------------------------ report
python3 - "$WORK" "${NAMES[@]}" <<'PY'
import re, sys
work, names = sys.argv[1], sys.argv[2:]
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
print()
print(f"{'endpoint':<42} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8}")
for i, name in enumerate(names):
    text = open(f"{work}/wrk-{i}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(*re.search(r"\s50%\s+([\d.]+)(us|ms|s)", text).groups())
    p99 = ms(*re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text).groups())
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    print(f"{name:<42} {rps:>10.0f} {p50:>9.2f} {p99:>9.2f} {int(bad.group(1)) if bad else 0:>8}")
PY
echo
echo "RSS idle (before load): $((IDLE_RSS / 1024)) MiB; peak (VmHWM after load): $((PEAK_RSS / 1024)) MiB"
echo "start-to-ready on SQLite: first start (generates keys) ${STARTUP[1]} ms; second start (keys exist) ${STARTUP[2]} ms"
