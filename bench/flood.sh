#!/usr/bin/env bash
# The secret-hashing flood, against the release binary on PostgreSQL (security hardening §1).
#
#   1. share: a verified client sends client_credentials without a break (wrk,
#      BENCH_FLOOD_REAL_CONC connections) through BENCH_FLOOD_CYCLES (6) cycles of a quiet and a
#      flood window of BENCH_FLOOD_WINDOW (10) seconds each. The flood is BENCH_FLOOD_CONC (1000)
#      connections sending client_credentials with a random wrong secret per request, two
#      thirds for the known client and one third for random unknown client ids; its connections
#      stay open through the quiet windows. The share is the verified client's mean tokens per
#      second in flood windows over quiet ones, without the first BENCH_FLOOD_SETTLE (5)
#      seconds of each window;
#   2. flood: the same flood without a break for BENCH_FLOOD_DURATION (30s); the verified
#      client's latency and errors are measured while it runs. Peak RSS (VmHWM) is read;
#   3. cold burst: a restarted server (nothing verified yet) gets BENCH_BURST_CONC (default
#      2000) connections all sending the correct secret at once; wrk's timeouts are counted.
#
# Targets: flood peak RSS <= 100 MiB, verified rate >= 90% of its quiet rate, p99 <= 50 ms;
# burst: no timeouts, peak RSS <= 100 MiB.
#
# Needs target/release/portcullis, PostgreSQL, wrk (installed from Debian when missing).
# Env: BENCH_FLOOD_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portcullis_flood, dropped
# and recreated), BENCH_FLOOD_DURATION, BENCH_FLOOD_CONC, BENCH_FLOOD_REAL_CONC (16),
# BENCH_FLOOD_CYCLES, BENCH_FLOOD_WINDOW, BENCH_FLOOD_SETTLE, BENCH_BURST_CONC, BENCH_BURST_DURATION (10s), BENCH_BIN (another binary, e.g. target/profiling/portcullis for perf).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BENCH_BIN:-target/release/portcullis}
DB_URL=${BENCH_FLOOD_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portcullis_flood}
FLOOD_DURATION=${BENCH_FLOOD_DURATION:-30s}
FLOOD_CONC=${BENCH_FLOOD_CONC:-1000}
REAL_CONC=${BENCH_FLOOD_REAL_CONC:-16}
BURST_CONC=${BENCH_BURST_CONC:-2000}
BURST_DURATION=${BENCH_BURST_DURATION:-10s}
CYCLES=${BENCH_FLOOD_CYCLES:-6}
WINDOW=${BENCH_FLOOD_WINDOW:-10}
SETTLE=${BENCH_FLOOD_SETTLE:-5}
PUBLIC=http://127.0.0.1:14454
ADMIN=http://127.0.0.1:14455
SECRET=bench-flood-system-secret-0123456789

[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
# 1000-2000 client connections plus the server's own: raise the descriptor limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN_DB_URL=${DB_URL%/*}/postgres
DB_NAME=${DB_URL##*/}
dropdb --if-exists --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
createdb --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
# Commits do not wait for the WAL flush in this database: the verified client's rate is bound by
# commit latency, and this machine's fsync latency swung it between 4.6k and 9.4k tokens/s
# within minutes, which drowned what the target compares (the server's own share under the
# flood). The fsync cost is the same with or without a flood, so leaving it out changes what is
# compared, not the comparison.
psql -q "$ADMIN_DB_URL" -c "ALTER DATABASE $DB_NAME SET synchronous_commit = off"
DSN="$DB_URL" "$BIN" migrate sql -e --yes >/dev/null

start_server() {
  DSN="$DB_URL" SECRETS_SYSTEM="$SECRET" LOG_LEVEL=error \
  SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT=${PUBLIC##*:} \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT=${ADMIN##*:} \
    "$BIN" serve all --dev >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + 120))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN/health/ready")" == 200 ]]; do
    (( SECONDS < deadline )) && kill -0 "$SERVER_PID" 2>/dev/null \
      || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.05
  done
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }
hwm_kib() { awk '$1 == "VmHWM:" {print $2}' "/proc/$SERVER_PID/status"; }

ID=flood-client
CLIENT_SECRET=flood-client-secret-0123456789
BASIC=$(printf '%s:%s' "$ID" "$CLIENT_SECRET" | base64 -w0)

start_server
curl -fsS -o /dev/null -X POST "$ADMIN/clients" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$ID\",\"client_secret\":\"$CLIENT_SECRET\",\"grant_types\":[\"client_credentials\"],\"scope\":\"read\"}"

cat >"$WORK/real.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA

# The verified client, counting its successes per wall-clock second (for the on/off schedule).
cp "$WORK/real.lua" "$WORK/real-counted.lua"
cat >>"$WORK/real-counted.lua" <<'LUA'
counts = {}
response = function(status)
  if status == 200 then
    local s = os.time()
    counts[s] = (counts[s] or 0) + 1
  end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function()
  local out = assert(io.open(os.getenv("COUNTS_OUT"), "w"))
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("counts")) do out:write(s, " ", n, "\n") end
  end
  out:close()
end
LUA

# Random wrong secrets: 2/3 for the known client, 1/3 for random unknown ids.
cat >"$WORK/flood.lua" <<'LUA'
-- Base64 three bytes at a time with table lookups: the generator shares the server's two
-- cores, so its own CPU per request is kept small (a bit-string encoder cost it several
-- times more).
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local sextet = {}
for i = 1, 64 do sextet[i - 1] = alphabet:sub(i, i) end
local function b64(data)
  local out, len = {}, #data
  for i = 1, len, 3 do
    local a, b, c = data:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1, d2 = math.floor(v / 262144), math.floor(v / 4096) % 64
    local d3, d4 = math.floor(v / 64) % 64, v % 64
    out[#out + 1] = sextet[d1] .. sextet[d2] .. (b and sextet[d3] or "=") .. (c and sextet[d4] or "=")
  end
  return table.concat(out)
end
local n = 0
init = function(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000) end
-- With FLOOD_T0 and FLOOD_WINDOW set, the flood only sends in odd windows counted from
-- FLOOD_T0 (its connections stay open and idle in the even ones).
local t0, window = tonumber(os.getenv("FLOOD_T0") or ""), tonumber(os.getenv("FLOOD_WINDOW") or "")
if t0 and window then
  delay = function()
    local phase = math.floor((os.time() - t0) / window)
    if phase % 2 == 1 then return 0 end
    return ((phase + 1) * window - (os.time() - t0)) * 1000
  end
end
request = function()
  n = n + 1
  local id = (n % 3 == 0) and ("unknown-" .. math.random(1, 1e9)) or "flood-client"
  local secret = "wrong-" .. math.random(1, 1e9) .. "-" .. n
  return wrk.format("POST", "/oauth2/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. b64(id .. ":" .. secret),
  }, "grant_type=client_credentials")
end
LUA

# Verify the real secret once (the remembered success every later request uses).
curl -fsS -o /dev/null -X POST "$PUBLIC/oauth2/token" -H "Authorization: Basic $BASIC" \
  -d 'grant_type=client_credentials&scope=read'

# A fresh database is slower for its first seconds (new WAL segments, empty tables and indexes):
# warm it up so the first baseline is not measured on a cold start.
wrk -t 1 -c "$REAL_CONC" -d 10s -s "$WORK/real.lua" "$PUBLIC/oauth2/token" >/dev/null
# The share. The shared machine's speed drifts and jumps (the verified client alone measured
# 5.4k and 11k tokens/s within minutes), which drowned a flood's effect in one before/during/
# after comparison. So the verified client runs without a break for CYCLES × 2 windows of
# WINDOW seconds, counting its tokens per second, while the flood's connections stay open and
# send only in every other window. The share is its mean rate in flood windows over its mean
# rate in quiet ones, leaving out the first SETTLE seconds of each window (throttled attempts
# are answered up to five seconds late, so a quiet window starts with the last answers).
echo "==> share: $CYCLES cycles of ${WINDOW}s quiet, ${WINDOW}s flood ($FLOOD_CONC connections); verified client throughout"
TOTAL=$((2 * CYCLES * WINDOW))
T0=$(( $(date +%s) + 2 ))
FLOOD_T0=$T0 FLOOD_WINDOW=$WINDOW wrk -t 1 -c "$FLOOD_CONC" -d "$((TOTAL + 2))s" --timeout 10s -s "$WORK/flood.lua" "$PUBLIC/oauth2/token" >"$WORK/toggled.txt" &
FLOOD_WRK=$!
sleep 2
COUNTS_OUT="$WORK/counts.txt" wrk -t 1 -c "$REAL_CONC" -d "${TOTAL}s" -s "$WORK/real-counted.lua" "$PUBLIC/oauth2/token" >"$WORK/real-counted.txt"
wait "$FLOOD_WRK"
SHARE_HWM=$(hwm_kib)

echo "==> flood: $FLOOD_CONC connections of wrong secrets for $FLOOD_DURATION, verified client's latency measured during it"
wrk -t 1 -c "$FLOOD_CONC" -d "$FLOOD_DURATION" --timeout 10s -s "$WORK/flood.lua" "$PUBLIC/oauth2/token" >"$WORK/flood.txt" &
FLOOD_WRK=$!
sleep 5
wrk -t 1 -c "$REAL_CONC" -d 20s --latency -s "$WORK/real.lua" "$PUBLIC/oauth2/token" >"$WORK/during.txt"
wait "$FLOOD_WRK"
FLOOD_HWM=$(hwm_kib)
curl -s "$ADMIN/metrics/prometheus" | grep '^portcullis_secret_verifications_total' >"$WORK/flood-metrics.txt" || true
stop_server

echo "==> cold burst: restarted server, $BURST_CONC connections with the correct secret"
start_server
wrk -t 2 -c "$BURST_CONC" -d "$BURST_DURATION" --timeout 10s --latency -s "$WORK/real.lua" "$PUBLIC/oauth2/token" >"$WORK/burst.txt"
BURST_HWM=$(hwm_kib)
curl -s "$ADMIN/metrics/prometheus" | grep '^portcullis_secret_verifications_total' >"$WORK/burst-metrics.txt" || true
stop_server

python3 - "$WORK" "$T0" "$WINDOW" "$SETTLE" "$TOTAL" "$SHARE_HWM" "$FLOOD_HWM" "$BURST_HWM" <<'PY'
import re, statistics, sys
work, t0, window, settle, total, share_hwm, flood_hwm, burst_hwm = sys.argv[1], *map(int, sys.argv[2:])
def ms(v, unit): return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
def wrk(name):
    t = open(f"{work}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", t)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    return dict(rps=rps, p99=ms(*p99.groups()) if p99 else None, non2xx=int(bad.group(1)) if bad else 0,
                timeouts=int(sock.group(4)) if sock else 0, errors=sum(map(int, sock.groups())) if sock else 0)
during, flood, burst = wrk("during"), wrk("flood"), wrk("burst")
per_second = {}
for line in open(f"{work}/counts.txt"):
    sec, n = map(int, line.split())
    per_second[sec] = per_second.get(sec, 0) + n
quiet, flooded = [], []
for sec in range(t0, t0 + total):
    phase, into = divmod(sec - t0, window)
    if into < settle or sec + 1 >= max(per_second, default=t0):
        continue
    (flooded if phase % 2 else quiet).append(per_second.get(sec, 0))
share = 100 * statistics.mean(flooded) / statistics.mean(quiet)
print()
print(f"verified client, quiet windows:  {statistics.mean(quiet):>8.0f} tokens/s (median {statistics.median(quiet):.0f}, {len(quiet)} s)")
print(f"verified client, flood windows:  {statistics.mean(flooded):>8.0f} tokens/s (median {statistics.median(flooded):.0f}, {len(flooded)} s)"
      f"  -> {share:.1f}% of its quiet rate")
print(f"verified client, continuous flood: {during['rps']:>6.0f} tokens/s  p99 {during['p99']:.2f} ms  non-2xx {during['non2xx']}")
print(f"flood answered:                  {flood['rps']:>8.0f} req/s (all non-2xx: {flood['non2xx']}), socket errors {flood['errors']}")
p99, bad = during["p99"], during["non2xx"] + during["errors"]
print(f"cold burst:                   {burst['rps']:>8.0f} tokens/s  p99 {burst['p99']:.2f} ms  non-2xx {burst['non2xx']}  timeouts {burst['timeouts']}")
print(f"peak RSS (VmHWM): after the on/off floods {share_hwm / 1024:.1f} MiB, after the continuous flood {flood_hwm / 1024:.1f} MiB, cold burst {burst_hwm / 1024:.1f} MiB")
for name in ("flood", "burst"):
    print(f"verification outcomes ({name}): " + ", ".join(
        l.split("outcome=")[1].replace('"}', "=").replace(" ", "") for l in open(f"{work}/{name}-metrics.txt")))
checks = [
    ("flood: peak RSS <= 100 MiB", flood_hwm <= 100 * 1024, f"{flood_hwm / 1024:.1f} MiB"),
    ("flood: verified client >= 90% of its quiet rate", share >= 90, f"{share:.1f}%"),
    ("flood: verified client p99 <= 50 ms", p99 <= 50, f"{p99:.2f} ms"),
    ("flood: verified client all 200", bad == 0, f"{bad} non-2xx or socket errors"),
    ("burst: no timeouts", burst["timeouts"] == 0, f"{burst['timeouts']}"),
    ("burst: all 200", burst["non2xx"] == 0, f"{burst['non2xx']} non-2xx"),
    ("burst: peak RSS <= 100 MiB", burst_hwm <= 100 * 1024, f"{burst_hwm / 1024:.1f} MiB"),
]
print("targets:")
for name, ok, val in checks:
    print(f"  [{'PASS' if ok else 'FAIL'}] {name:<52} measured {val}")
PY
