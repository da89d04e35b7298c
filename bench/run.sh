#!/usr/bin/env bash
# Load benchmark of the release binary on PostgreSQL, plus start-to-ready
# time on SQLite. Everything binds to 127.0.0.1.
#
# Sections (each runs for BENCH_DURATION):
#   - wrk GETs of cheap endpoints (admin client read, JWKS, discovery, health)
#   - client_credentials issuance: wrk POST /oauth2/token (client_secret_basic)
#   - introspection of a valid access token: wrk POST admin /oauth2/introspect
#   - full authorization-code flows (auth -> login accept -> consent accept ->
#     code -> token exchange with PKCE S256), driven by examples/flowbench.rs,
#     with scope "openid offline" (RS256-4096 ID token), "offline" (none) and "openid offline"
#     with an ES256 ID-token key,
#     plus the raw RS256 signing rate of the server's ID-token key
#   - raw PostgreSQL rate of a single-row ~500-byte INSERT (pgbench, scratch DB)
#   - the secret-hashing flood and cold burst (bench/flood.sh)
#
# Needs: target/release/portcullis (cargo build --release --locked),
# target/release/examples/flowbench (cargo build --release --example flowbench),
# a running PostgreSQL, curl, python3, createdb/dropdb/psql/pgbench, and the
# `wrk` load generator (Debian package `wrk`; installed with apt-get when missing).
#
# Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portcullis_bench,
#        which is dropped and recreated on every run; a database you name is reused, and
#        only the rows this run wrote are deleted at the end)
#      BENCH_DURATION (default 10s), BENCH_CONCURRENCY (wrk connections, default 64)
#      BENCH_FLOW_CONCURRENCY (flowbench tasks, default 32)
#      BENCH_PGBENCH_CLIENTS (default 32)
#      BENCH_ONLY=introspection: only strict introspection of an active opaque token (no
#        flowbench needed); with BENCH_BASELINE_BIN=<another portcullis binary> the same
#        measurement is also taken with that binary, right before, for a comparison in one run
#
# Introspection is always measured strict (OAUTH2_INTROSPECTION_CACHE_TTL=0s, the default):
# every request reads the database, so a revocation on any replica shows at once.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release/portcullis
FLOWBENCH=target/release/examples/flowbench
DB_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portcullis_bench}
DURATION=${BENCH_DURATION:-10s}
CONC=${BENCH_CONCURRENCY:-64}
FLOW_CONC=${BENCH_FLOW_CONCURRENCY:-32}
PGB_CLIENTS=${BENCH_PGBENCH_CLIENTS:-32}
PUBLIC=http://127.0.0.1:14444
ADMIN=http://127.0.0.1:14445
SECRET=bench-secret-0123456789abcdef
# Nothing listens there: the flow benchmark only reads Location headers.
URLS_LOGIN_BENCH=http://127.0.0.1:5555/login
URLS_CONSENT_BENCH=http://127.0.0.1:5555/consent
FLOW_REDIRECT=http://127.0.0.1:5555/cb
RUN_ID="$(date +%s)-$$"

[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }
ONLY=${BENCH_ONLY:-}
BASELINE_BIN=${BENCH_BASELINE_BIN:-}
[[ -n "$ONLY" || -x "$FLOWBENCH" ]] || { echo "missing $FLOWBENCH; run: cargo build --release --example flowbench" >&2; exit 1; }
for tool in curl python3 psql createdb dropdb pgbench; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing the Debian package" >&2
  apt-get install -y -q wrk >/dev/null
fi

# BENCH_DURATION in whole seconds (wrk syntax: 10, 10s, 1m, 1h), for pgbench/flowbench.
DUR_S=$(python3 -c '
import math, sys
v = sys.argv[1]; m = {"s": 1, "m": 60, "h": 3600}
print(max(1, math.ceil(float(v[:-1]) * m[v[-1]] if v[-1] in m else float(v))))' "$DURATION")

WORK=$(mktemp -d)
PIDS=()
SCRATCH_DBS=()
PG_ADMIN_URL=""
cleanup() {
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  for db in "${SCRATCH_DBS[@]}"; do
    dropdb --if-exists --maintenance-db="$PG_ADMIN_URL" "$db" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server DSN LOG [BINARY] -> sets SERVER_PID
start_server() {
  DSN="$1" SECRETS_SYSTEM="$SECRET" OAUTH2_INTROSPECTION_CACHE_TTL=0s \
  SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT=14444 \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT=14445 \
  URLS_SELF_ISSUER="$PUBLIC/" URLS_LOGIN="$URLS_LOGIN_BENCH" URLS_CONSENT="$URLS_CONSENT_BENCH" \
    "${3:-$BIN}" serve all --dev >"$2" 2>&1 &
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

# ------------------------------------------------------------------ introspection only
# intro_only BINARY LABEL: fresh client and token, then wrk on admin /oauth2/introspect.
intro_only() {
  start_server "$DB_URL" "$WORK/intro-$2.log" "$1"
  wait_ready "$WORK/intro-$2.log"
  local id="bench-intro-$2-$RUN_ID" secret="bench-intro-secret-$RUN_ID"
  curl -fsS -o /dev/null -X POST "$ADMIN/clients" -H 'Content-Type: application/json' \
    -d "{\"client_id\":\"$id\",\"client_secret\":\"$secret\",\"grant_types\":[\"client_credentials\"],\"scope\":\"read\"}"
  curl -fsS -o "$WORK/intro-token.json" -X POST "$PUBLIC/oauth2/token" -u "$id:$secret" \
    --data 'grant_type=client_credentials&scope=read'
  local token
  token=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(open(sys.argv[1]))["access_token"], safe=""))' "$WORK/intro-token.json")
  printf 'wrk.method = "POST"\nwrk.body = "token=%s"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n' "$token" >"$WORK/intro.lua"
  echo "==> wrk admin POST /oauth2/introspect (active, strict), $2 (-c $CONC -d $DURATION)"
  wrk -t 2 -c "$CONC" -d "$DURATION" --latency -s "$WORK/intro.lua" "$ADMIN/oauth2/introspect" >"$WORK/intro-$2.txt"
  curl -fsS -o /dev/null -X DELETE "$ADMIN/clients/$id" || true
  stop_server "$SERVER_PID"
  python3 - "$WORK/intro-$2.txt" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = {p: re.search(rf"\s{p}%\s+([\d.]+\w+)", text).group(1) for p in (50, 99)}
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
print(f"strict introspection, {sys.argv[2]}: {rps:.0f} req/s, p50 {lat[50]}, p99 {lat[99]}, "
      f"non-2xx {int(bad.group(1)) if bad else 0}")
PY
}

if [[ "$ONLY" == introspection ]]; then
  DB_NAME=${DB_URL##*/}; DB_NAME=${DB_NAME%%\?*}
  ADMIN_DB_URL=${DB_URL%/*}/postgres
  PG_ADMIN_URL=$ADMIN_DB_URL
  if [[ -z "${BENCH_DATABASE_URL:-}" ]]; then
    dropdb --if-exists --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
  fi
  if ! psql "$ADMIN_DB_URL" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
    createdb --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
  fi
  DSN="$DB_URL" "$BIN" migrate sql -e --yes
  if [[ -n "$BASELINE_BIN" ]]; then
    intro_only "$BASELINE_BIN" baseline | tee "$WORK/intro-summary.txt"
  fi
  intro_only "$BIN" this-build | tee -a "$WORK/intro-summary.txt"
  psql -q "$DB_URL" -c "DELETE FROM portcullis_token WHERE client_id LIKE 'bench-intro-%-$RUN_ID'" >/dev/null 2>&1 || true
  echo
  cat "$WORK/intro-summary.txt"
  exit 0
elif [[ -n "$ONLY" ]]; then
  echo "BENCH_ONLY supports: introspection" >&2; exit 1
fi

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
PG_ADMIN_URL=$ADMIN_DB_URL
if [[ -z "${BENCH_DATABASE_URL:-}" ]]; then
  # The default database belongs to this script: start every run from an empty schema, so
  # that runs are comparable and edited migrations do not break the benchmark.
  dropdb --if-exists --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
fi
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

HWM_BASIC=$(rss_kb "$PG_PID" VmHWM)
curl -fsS -o /dev/null -X DELETE "$ADMIN/clients/$CLIENT_ID" || true

# wrk_post NAME URL BODY [EXTRA_HEADER_LUA] -> appends to NAMES, writes wrk-<i>.txt
wrk_post() {
  local i=${#NAMES[@]} lua="$WORK/post-${#NAMES[@]}.lua"
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = \"$3\""
    echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
    if [[ -n "${4:-}" ]]; then echo "$4"; fi
  } >"$lua"
  echo "==> wrk $1 (-c $CONC -d $DURATION)"
  NAMES+=("$1")
  wrk -t 2 -c "$CONC" -d "$DURATION" --latency -s "$lua" "$2" >"$WORK/wrk-$i.txt"
}

# ------------------------------------------------------------------ client_credentials
CC_ID="bench-cc-$RUN_ID"
CC_SECRET="bench-cc-secret-$RUN_ID"
curl -fsS -o /dev/null -X POST "$ADMIN/clients" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CC_ID\",\"client_secret\":\"$CC_SECRET\",\"grant_types\":[\"client_credentials\"],\"scope\":\"read write\",\"token_endpoint_auth_method\":\"client_secret_basic\"}"
CC_BASIC=$(printf '%s:%s' "$CC_ID" "$CC_SECRET" | base64 -w0)
CC_BODY='grant_type=client_credentials&scope=read'
cc_token() {
  curl -s -o "$WORK/cc.json" -w '%{http_code}' -X POST "$PUBLIC/oauth2/token" \
    -H "Authorization: Basic $CC_BASIC" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data "$CC_BODY"
}
code=$(cc_token)
if [[ "$code" != 200 ]]; then
  echo "client_credentials probe returned $code: $(cat "$WORK/cc.json")" >&2; exit 1
fi
CC_OK_NAME="POST /oauth2/token client_credentials"
wrk_post "$CC_OK_NAME" "$PUBLIC/oauth2/token" "$CC_BODY" "wrk.headers[\"Authorization\"] = \"Basic $CC_BASIC\""
CC_IDX=$((${#NAMES[@]} - 1))
HWM_CC=$(rss_kb "$PG_PID" VmHWM)

# ------------------------------------------------------------------ introspection
code=$(cc_token)
[[ "$code" == 200 ]] || { echo "token request returned $code: $(cat "$WORK/cc.json")" >&2; exit 1; }
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$WORK/cc.json")
TOKEN_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TOKEN")
introspect_active() {
  curl -fsS -X POST "$ADMIN/oauth2/introspect" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data "token=$TOKEN_ENC" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("active"))'
}
[[ "$(introspect_active)" == True ]] || { echo "introspection probe: token not active" >&2; exit 1; }
wrk_post "admin POST /oauth2/introspect (active)" "$ADMIN/oauth2/introspect" "token=$TOKEN_ENC"
INTRO_IDX=$((${#NAMES[@]} - 1))
INTRO_AFTER=$(introspect_active)
HWM_INTRO=$(rss_kb "$PG_PID" VmHWM)

# ------------------------------------------------------------------ authorization-code flows
AC_ID="bench-ac-$RUN_ID"
AC_SECRET="bench-ac-secret-$RUN_ID"
curl -fsS -o /dev/null -X POST "$ADMIN/clients" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$AC_ID\",\"client_secret\":\"$AC_SECRET\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"],\"scope\":\"openid offline\",\"redirect_uris\":[\"$FLOW_REDIRECT\"],\"token_endpoint_auth_method\":\"client_secret_basic\"}"
FLOW_SCOPES=("openid offline" "offline")
for j in "${!FLOW_SCOPES[@]}"; do
  echo "==> flowbench authorization-code flows, scope \"${FLOW_SCOPES[$j]}\" ($FLOW_CONC tasks, ${DUR_S}s)"
  "$FLOWBENCH" flows --public "$PUBLIC" --admin "$ADMIN" --client-id "$AC_ID" \
    --client-secret "$AC_SECRET" --redirect-uri "$FLOW_REDIRECT" --scope "${FLOW_SCOPES[$j]}" \
    --concurrency "$FLOW_CONC" --duration "$DUR_S" --subject "bench-$RUN_ID" \
    >"$WORK/flows-$j.txt" 2>"$WORK/flows-$j.err" || { cat "$WORK/flows-$j.err" >&2; exit 1; }
done
HWM_FLOWS=$(rss_kb "$PG_PID" VmHWM)
echo "==> RS256 signing rate with the server's ID-token key (${DUR_S}s, server idle)"
"$FLOWBENCH" sign --admin "$ADMIN" --duration "$DUR_S" >"$WORK/sign.txt"
# The same flows with an ES256 ID-token key: the newest key of the set signs.
curl -fsS -o /dev/null -X POST "$ADMIN/keys/hydra.openid.id-token" -H 'Content-Type: application/json' \
  -d '{"alg":"ES256","use":"sig","kid":"bench-es256"}'
echo "==> flowbench authorization-code flows, scope \"openid offline\", ES256 ID token ($FLOW_CONC tasks, ${DUR_S}s)"
"$FLOWBENCH" flows --public "$PUBLIC" --admin "$ADMIN" --client-id "$AC_ID" \
  --client-secret "$AC_SECRET" --redirect-uri "$FLOW_REDIRECT" --scope "openid offline" \
  --concurrency "$FLOW_CONC" --duration "$DUR_S" --subject "bench-$RUN_ID" \
  >"$WORK/flows-2.txt" 2>"$WORK/flows-2.err" || { cat "$WORK/flows-2.err" >&2; exit 1; }
for kid in private:bench-es256 public:bench-es256; do
  curl -fsS -o /dev/null -X DELETE "$ADMIN/keys/hydra.openid.id-token/$kid"
done

# /proc RSS counters are updated lazily per thread, so take the largest sample.
PEAK_RSS=$(printf '%s\n' "$(rss_kb "$PG_PID" VmHWM)" "$HWM_BASIC" "$HWM_CC" "$HWM_INTRO" "$HWM_FLOWS" | sort -n | tail -1)

# Remove what this run wrote to the benchmark database, so that runs stay comparable.
for c in "$CC_ID" "$AC_ID"; do
  curl -fsS -o /dev/null -X DELETE "$ADMIN/clients/$c" || true
done
stop_server "$PG_PID"
psql -q "$DB_URL" -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL || echo "note: could not delete this run's rows from $DB_NAME" >&2
DELETE FROM portcullis_token WHERE client_id IN ('$CC_ID', '$AC_ID');
DELETE FROM portcullis_flow WHERE client_id IN ('$CC_ID', '$AC_ID');
DELETE FROM portcullis_login_session WHERE subject = 'bench-$RUN_ID';
SQL

# ------------------------------------------------------------------ raw PostgreSQL insert rate
RAW_DB="${DB_NAME}_rawinsert_$$"
echo "==> pgbench single-row ~500-byte INSERT ($PGB_CLIENTS clients, ${DUR_S}s, scratch database $RAW_DB)"
SCRATCH_DBS+=("$RAW_DB")
createdb --maintenance-db="$ADMIN_DB_URL" "$RAW_DB"
RAW_URL=${DB_URL%/*}/$RAW_DB
psql -q "$RAW_URL" -v ON_ERROR_STOP=1 \
  -c 'CREATE TABLE raw_insert (id TEXT PRIMARY KEY, payload TEXT NOT NULL)'
# Key: 32 hex chars, unique per transaction; payload: 16 x 32 hex chars = 512 bytes.
cat >"$WORK/raw.sql" <<'SQL'
INSERT INTO raw_insert (id, payload)
VALUES (md5(:client_id::text || ':' || random()::text || clock_timestamp()::text),
        repeat(md5(random()::text), 16));
SQL
pgbench -n -c "$PGB_CLIENTS" -j 2 -T "$DUR_S" -f "$WORK/raw.sql" "$RAW_URL" >"$WORK/pgbench.txt" 2>&1 \
  || { cat "$WORK/pgbench.txt" >&2; exit 1; }
dropdb --maintenance-db="$ADMIN_DB_URL" "$RAW_DB"

# ------------------------------------------------------------------ report
python3 - "$WORK" "$CC_IDX" "$INTRO_IDX" "$INTRO_AFTER" "${NAMES[@]}" <<'PY'
import re, sys
work, cc_idx, intro_idx, intro_after, names = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
def kv(line):
    return dict(p.split("=", 1) for p in line.split()[1:])
print()
print(f"{'endpoint (wrk)':<42} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8} {'sock err':>8}")
res = {}
for i, name in enumerate(names):
    text = open(f"{work}/wrk-{i}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(*re.search(r"\s50%\s+([\d.]+)(us|ms|s)", text).groups())
    p99 = ms(*re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text).groups())
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    bad = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    sock = sum(map(int, sock.groups())) if sock else 0
    res[i] = (rps, p50, p99, bad, sock)
    print(f"{name:<42} {rps:>10.0f} {p50:>9.2f} {p99:>9.2f} {bad:>8} {sock:>8}")
print(f"(introspected token still active after the run: {intro_after})")

print()
print(f"{'authorization-code flows (flowbench)':<42} {'flows/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>8} {'flows':>8}")
flows = {}
for j, scope in enumerate(["openid offline", "offline", "openid offline, ES256"]):
    line = next(l for l in open(f"{work}/flows-{j}.txt") if l.startswith("RESULT "))
    r = kv(line)
    flows[scope] = r
    label = f"scope \"{scope}\", {r['concurrency']} tasks"
    print(f"{label:<42} {float(r['flows_per_s']):>10.1f} {float(r['p50_ms']):>9.2f} {float(r['p99_ms']):>9.2f} {r['errors']:>8} {r['flows']:>8}")
    errs = open(f"{work}/flows-{j}.err").read().strip()
    if errs:
        print("  first errors:\n    " + errs.replace("\n", "\n    "))
for line in open(f"{work}/sign.txt"):
    if line.startswith("RESULT "):
        r = kv(line)
        print(f"RS256-{r['bits']} signing, {r['threads']} thread(s): {float(r['signs_per_s']):.0f} signatures/s, "
              f"{float(r['cpu_ms_per_sign']):.2f} ms CPU each (threads got {100 * float(r['cpu_share']):.0f}% of a core)")
fo, fx = float(flows["openid offline"]["flows_per_s"]), float(flows["offline"]["flows_per_s"])
if fx > 0 and fo > 0:
    print(f"ID token cost: {fo:.1f} flows/s with openid vs {fx:.1f} without "
          f"(the whole machine spends {1000/fo - 1000/fx:+.2f} ms more per flow)")

print()
pg = open(f"{work}/pgbench.txt").read()
tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", pg).group(1))
lat = re.search(r"latency average = ([\d.]+) ms", pg)
print(f"raw PostgreSQL single-row ~500-byte INSERT (pgbench): {tps:.0f} tps"
      + (f", avg latency {float(lat.group(1)):.2f} ms" if lat else ""))
cc = res[cc_idx]
print(f"client_credentials tokens/s as a share of the raw insert rate: {100 * cc[0] / tps:.1f}%")

print()
intro = res[intro_idx]
checks = [
    ("client_credentials >= 8000 tokens/s", cc[0] >= 8000, f"{cc[0]:.0f}"),
    ("client_credentials >= 40% of raw insert rate", cc[0] >= 0.4 * tps, f"{100 * cc[0] / tps:.1f}%"),
    ("client_credentials p99 <= 20 ms", cc[2] <= 20, f"{cc[2]:.2f} ms"),
    ("client_credentials non-2xx == 0", cc[3] == 0 and cc[4] == 0, f"{cc[3]} non-2xx, {cc[4]} socket errors"),
    ("introspection >= 20000 req/s", intro[0] >= 20000, f"{intro[0]:.0f}"),
    ("introspection p99 <= 20 ms", intro[2] <= 20, f"{intro[2]:.2f} ms"),
    ("auth-code flows >= 400/s (openid offline)", fo >= 400, f"{fo:.1f}"),
    ("auth-code flows >= 450/s (ES256 ID token)", float(flows["openid offline, ES256"]["flows_per_s"]) >= 450,
     f"{float(flows['openid offline, ES256']['flows_per_s']):.1f}"),
    ("auth-code flows with 0 errors", all(int(f["errors"]) == 0 for f in flows.values()),
     ", ".join(f"{s}: {f['errors']}" for s, f in flows.items())),
]
print("targets:")
for name, ok, val in checks:
    print(f"  [{'PASS' if ok else 'FAIL'}] {name:<46} measured {val}")
PY
echo
echo "RSS idle (before load): $((IDLE_RSS / 1024)) MiB; peak (VmHWM) after GETs $((HWM_BASIC / 1024)) MiB," \
  "after client_credentials $((HWM_CC / 1024)) MiB, after introspection $((HWM_INTRO / 1024)) MiB," \
  "after flows $((HWM_FLOWS / 1024)) MiB; peak overall $((PEAK_RSS / 1024)) MiB"
echo "start-to-ready on SQLite: first start (generates keys) ${STARTUP[1]} ms; second start (keys exist) ${STARTUP[2]} ms"
echo "(2-core shared machine: server, PostgreSQL and load generators share the same cores; duration $DURATION per section)"

# ------------------------------------------------------------------ secret-hashing flood
if [[ -z "${BENCH_SKIP_FLOOD:-}" ]]; then
  echo
  echo "==> secret-hashing flood and cold burst (bench/flood.sh; BENCH_SKIP_FLOOD=1 skips)"
  bench/flood.sh
fi
