#!/usr/bin/env bash
# Janitor benchmark on PostgreSQL (not run in CI): 1,000,000 expired tokens, inserted with one
# generate_series statement, deleted by `portcullis janitor` while wrk issues client_credentials
# tokens against a running server. Prints the janitor's rows/s and its longest single statement
# (timed by the janitor around each DELETE), the token traffic served meanwhile, and checks that
# every token issued during the run is still there.
#
# Needs: target/release/portcullis (cargo build --release --locked), a running PostgreSQL,
# psql/createdb/dropdb, curl, python3 and wrk (Debian package `wrk`).
#
# Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portcullis_janitor_bench,
#        dropped and recreated on every run; a database you name is reused, and only the rows
#        this script wrote are deleted)
#      BENCH_ROWS (default 1000000)
#      BENCH_BATCH_SIZES (default "100 1000": one measured run per --batch-size, each on a
#        fresh backlog of BENCH_ROWS)
#      BENCH_CONCURRENCY (wrk connections, default 16)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/release/portcullis
DB_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portcullis_janitor_bench}
ROWS=${BENCH_ROWS:-1000000}
BATCHES=${BENCH_BATCH_SIZES:-100 1000}
CONC=${BENCH_CONCURRENCY:-16}
PUBLIC=http://127.0.0.1:14444
ADMIN=http://127.0.0.1:14445
SECRET=bench-secret-0123456789abcdef
RUN_ID="$(date +%s)-$$"

[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }
for tool in curl python3 psql createdb dropdb wrk; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

DB_NAME=${DB_URL##*/}; DB_NAME=${DB_NAME%%\?*}
ADMIN_DB_URL=${DB_URL%/*}/postgres
if [[ -z "${BENCH_DATABASE_URL:-}" ]]; then
  dropdb --if-exists --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
fi
if ! psql "$ADMIN_DB_URL" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
  createdb --maintenance-db="$ADMIN_DB_URL" "$DB_NAME"
fi
DSN="$DB_URL" "$BIN" migrate sql -e --yes >/dev/null

DSN="$DB_URL" SECRETS_SYSTEM="$SECRET" LOG_LEVEL=warn \
SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT=14444 \
SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT=14445 \
URLS_SELF_ISSUER="$PUBLIC/" \
  "$BIN" serve all --dev >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
deadline=$((SECONDS + 120))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN/health/ready")" == 200 ]]; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null || (( SECONDS > deadline )); then
    echo "server failed to become ready; log:" >&2; cat "$WORK/server.log" >&2; exit 1
  fi
  sleep 0.05
done

CC_ID="bench-janitor-cc-$RUN_ID"
CC_SECRET="bench-janitor-secret-$RUN_ID"
curl -fsS -o /dev/null -X POST "$ADMIN/clients" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CC_ID\",\"client_secret\":\"$CC_SECRET\",\"grant_types\":[\"client_credentials\"],\"scope\":\"read\"}"
CC_BASIC=$(printf '%s:%s' "$CC_ID" "$CC_SECRET" | base64 -w0)
# One request first, so the secret's verification is remembered before the load starts.
curl -fsS -o /dev/null -X POST "$PUBLIC/oauth2/token" -H "Authorization: Basic $CC_BASIC" \
  --data 'grant_type=client_credentials&scope=read'
cat >"$WORK/token.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $CC_BASIC"
EOF

# backlog N: N expired tokens (80% access, 15% refresh, 5% codes), expired 1 to 2 hours ago,
# with a 400-byte session like a sealed one.
backlog() {
  psql -q -v ON_ERROR_STOP=1 "$DB_URL" <<SQL
INSERT INTO portcullis_token (signature, kind, request_id, client_id, active, requested_at, expires_at, data)
SELECT 'bench-$RUN_ID-' || g,
       CASE WHEN g % 20 = 0 THEN 'code' WHEN g % 20 < 4 THEN 'refresh' ELSE 'access' END,
       'bench-grant-$RUN_ID-' || (g / 3),
       'bench-janitor-backlog',
       1,
       CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - 7200 - (g % 3600),
       CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - 3600 - (g % 3600),
       repeat('x', 400)
FROM generate_series(1, $1) AS g;
ANALYZE portcullis_token;
SQL
}

count() { psql -tAc "$1" "$DB_URL"; }

SUMMARY="$WORK/summary.txt"
for batch in $BATCHES; do
  echo "==> inserting $ROWS expired tokens"
  t0=$(date +%s.%N)
  backlog "$ROWS"
  echo "    inserted in $(python3 -c "import sys; print(round($(date +%s.%N) - $t0, 1))") s"
  before_live=$(count "SELECT COUNT(*) FROM portcullis_token WHERE client_id = '$CC_ID'")

  echo "==> janitor --tokens --batch-size $batch while wrk issues tokens (-c $CONC)"
  wrk -t 2 -c "$CONC" -d 3600s --latency -s "$WORK/token.lua" "$PUBLIC/oauth2/token" >"$WORK/wrk-$batch.txt" 2>&1 &
  WRK_PID=$!
  PIDS+=("$WRK_PID")
  sleep 2
  DSN="$DB_URL" LOG_LEVEL=warn "$BIN" janitor -e --tokens --requests \
    --limit $((ROWS * 2)) --batch-size "$batch" >"$WORK/janitor-$batch.out" 2>"$WORK/janitor-$batch.err"
  sleep 1
  kill -INT "$WRK_PID" 2>/dev/null || true
  wait "$WRK_PID" 2>/dev/null || true
  cat "$WORK/janitor-$batch.out"

  left=$(count "SELECT COUNT(*) FROM portcullis_token WHERE client_id = 'bench-janitor-backlog'")
  live=$(count "SELECT COUNT(*) FROM portcullis_token WHERE client_id = '$CC_ID'")
  python3 - "$WORK/janitor-$batch.out" "$WORK/wrk-$batch.txt" "$batch" "$left" "$before_live" "$live" >>"$SUMMARY" <<'PY'
import re, sys
out, wrk, batch, left, before, live = sys.argv[1:]
m = re.search(r"Deleted (\d+) rows in ([\d.]+) s \((\d+) rows/s\); longest statement ([\d.]+) ms", open(out).read())
text = open(wrk).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p99 = re.search(r"\s99%\s+([\d.]+\w+)", text)
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
reqs = re.search(r"(\d+) requests in", text)
ok = (int(reqs.group(1)) if reqs else 0) - (int(bad.group(1)) if bad else 0)
added = int(live) - int(before)
verdict = "OK" if m and float(m.group(4)) < 200 else "OVER 200 ms"
kept = "none deleted" if added >= ok else f"{ok - added} MISSING"
print(f"batch {batch}: deleted {m.group(1)} rows in {m.group(2)} s = {m.group(3)} rows/s; "
      f"longest statement {m.group(4)} ms ({verdict}); backlog left {left}; "
      f"traffic meanwhile: {float(rps.group(1)) if rps else 0:.0f} tokens/s, p99 {p99.group(1) if p99 else '?'}, "
      f"non-2xx {int(bad.group(1)) if bad else 0}; {ok} tokens answered, {added} rows added ({kept})")
PY
  [[ "$left" == 0 ]] || { echo "backlog not fully deleted: $left left" >&2; exit 1; }
done

issued=$(count "SELECT COUNT(*) FROM portcullis_token WHERE client_id = '$CC_ID'")
echo
echo "PostgreSQL $(psql -tAc 'SHOW server_version' "$DB_URL"), $(nproc) cores, $ROWS expired tokens per run"
cat "$SUMMARY"
echo "live tokens of the load client at the end: $issued"
psql -q "$DB_URL" -c "DELETE FROM portcullis_token WHERE client_id IN ('$CC_ID', 'bench-janitor-backlog')" >/dev/null 2>&1 || true
curl -fsS -o /dev/null -X DELETE "$ADMIN/clients/$CC_ID" || true
