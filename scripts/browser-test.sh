#!/usr/bin/env bash
# Headless-Chromium tests of framecast's viewer and of wire compatibility with pdum.rfb 0.3.
#
#   ./scripts/browser-test.sh                    # every tests/browser/*.test.js
#   ./scripts/browser-test.sh pdum-server        # only files whose name contains a word
#
# Installs what it needs when missing (nothing is vendored into the repository):
#   tests/browser/node_modules   `npm ci`: playwright-core (the browser is the system Chromium), and
#                                @moq/watch + esbuild (the MoQ project's web player, bundled per run)
#   .peer/                       Python venv with the pdum.rfb 0.3.0 wheel from PyPI (--no-deps, so it
#                                runs on Python 3.11) plus numpy<2.5, pillow, websockets and PyAV
#                                (PyAV gives the peer server its libx264 path; PEER_NO_AV=1 skips it)
#   target/debug/framecast       `cargo build -p framecast-cli` when absent (not rebuilt when present)
# Environment: CHROMIUM (default /usr/bin/chromium), FRAMECAST_BIN, PEER_PYTHON, BROWSER_TEST_WAIT_MS,
# BROWSER_TEST_FILE_TIMEOUT_S (600), BROWSER_TEST_TOTAL_TIMEOUT_S (1800).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "error: no Chromium at $CHROMIUM (apt-get install chromium, or set CHROMIUM)" >&2
  exit 1
fi
export CHROMIUM
command -v node >/dev/null || { echo "error: node (>= 20) is required" >&2; exit 1; }

if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/@moq/watch ] ||
   [ ! -d tests/browser/node_modules/esbuild ]; then
  step "npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

PEER_PYTHON=${PEER_PYTHON:-$ROOT/.peer/bin/python}
if ! "$PEER_PYTHON" -c 'import pdum.rfb.server' >/dev/null 2>&1; then
  step "installing the pdum.rfb 0.3.0 peer into .peer/"
  python3 -m venv .peer
  mkdir -p .peer/wheels
  .peer/bin/pip download -q --no-deps --python-version 3.12 --only-binary=:all: \
    -d .peer/wheels habemus-papadum-rfb==0.3.0
  # The wheel says Python >= 3.12 and numpy >= 2.5; it runs on 3.11 with numpy 2.4.
  .peer/bin/pip install -q --no-deps --ignore-requires-python .peer/wheels/habemus_papadum_rfb-0.3.0-py3-none-any.whl
  .peer/bin/pip install -q 'numpy<2.5' pillow websockets
  PEER_PYTHON=$ROOT/.peer/bin/python
fi
if [ "${PEER_NO_AV:-0}" != "1" ] && ! "$PEER_PYTHON" -c 'import av' >/dev/null 2>&1; then
  step "installing PyAV into .peer/ (the peer's H.264 encoder)"
  "$(dirname "$PEER_PYTHON")/pip" install -q av || echo "warning: no PyAV; the peer server will send images only" >&2
fi
export PEER_PYTHON

FRAMECAST_BIN=${FRAMECAST_BIN:-$ROOT/target/debug/framecast}
if [ ! -x "$FRAMECAST_BIN" ]; then
  step "cargo build -p framecast-cli"
  cargo build -p framecast-cli
fi
export FRAMECAST_BIN

files=()
if [ $# -gt 0 ]; then
  for word in "$@"; do
    for f in tests/browser/*"$word"*.test.js; do [ -e "$f" ] && files+=("$f"); done
  done
else
  files=(tests/browser/*.test.js)
fi
[ ${#files[@]} -gt 0 ] || { echo "error: no test file matches: $*" >&2; exit 1; }

step "browser tests: ${files[*]}"
# One file at a time: each drives one Chromium and one server; the CI machine has 2 cores.
# Bounds, so that a hang fails with its test named (lib.js logs each test's start) rather than
# running out the CI's clock: a file ends after FILE_TIMEOUT_S (the runner's --test-timeout is
# per file; the longest takes under 2 min here), all of them after TOTAL_TIMEOUT_S.
FILE_TIMEOUT_S=${BROWSER_TEST_FILE_TIMEOUT_S:-600}
TOTAL_TIMEOUT_S=${BROWSER_TEST_TOTAL_TIMEOUT_S:-1800}
rc=0
timeout -k 20 "$TOTAL_TIMEOUT_S" node --test --test-concurrency=1 --test-timeout=$((FILE_TIMEOUT_S * 1000)) "${files[@]}" || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "error: the browser tests did not finish within ${TOTAL_TIMEOUT_S} s (the last 'start:' line above names the test)" >&2
fi
exit "$rc"
