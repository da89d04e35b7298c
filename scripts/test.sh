#!/usr/bin/env bash
# The project's test command (README and CI both run exactly this).
# Tests build in the release profile: the release binary (SDK check, benchmarks) then reuses
# the same dependency builds instead of compiling the tree a second time.
# Always runs the suite on SQLite; if TEST_DATABASE_URL is set
# (e.g. postgres://postgres@127.0.0.1:5432/portcullis_ci) runs it again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo test (SQLite)"
env -u TEST_DATABASE_URL cargo test --release --locked "$@"

if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
  echo "==> cargo test (PostgreSQL: ${TEST_DATABASE_URL%%@*}@...)"
  TEST_DATABASE_URL="$TEST_DATABASE_URL" cargo test --release --locked "$@"
fi
