#!/usr/bin/env bash
# Browser test of the first run: headless Chromium through the `serve all --dev` demo login and
# consent pages, with `token user` as the client (see flow.mjs). Loopback only; stops by itself.
# Uses Debian's chromium (installed here when missing) and playwright-core from npm, which
# downloads no browser of its own.
# Prerequisite: cargo build --release --locked
set -euo pipefail
cd "$(dirname "$0")"

BIN=../../target/release/portcullis
[[ -x "$BIN" ]] || { echo "missing $BIN; run: cargo build --release --locked" >&2; exit 1; }

if [[ ! -x /usr/bin/chromium ]]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
timeout 180 node flow.mjs "$BIN"
