#!/usr/bin/env bash
# Publish -> displayed latency in headless Chromium, framecast's viewer against `framecast serve`
# (test card; 720p and 1080p; 30 and 60 fps; OpenH264 -> WebCodecs and JPEG images).
# Prints machine information and a markdown table (medians and p95) for BENCHMARKS.md.
#
#   ./scripts/latency-bench.sh
#   BENCH_SECONDS=20 BENCH_CONFIGS=1920x1080@60:video ./scripts/latency-bench.sh
#
# Builds target/release/framecast (cargo build --release -p framecast-cli) unless FRAMECAST_BIN
# is set. Run it on an otherwise idle machine: the encoder, the browser and the decoder share it.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "error: no Chromium at $CHROMIUM" >&2; exit 1; }
export CHROMIUM
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund) >&2
fi
BUILD="release build"
if [ -z "${FRAMECAST_BIN:-}" ]; then
  cargo build --release -q -p framecast-cli >&2
  FRAMECAST_BIN=$(pwd)/target/release/framecast
else
  BUILD="binary $FRAMECAST_BIN"
fi
export FRAMECAST_BIN

# The benchmark itself keeps ~2 cores busy (server, Chromium, node); other work skews it.
# BENCH_WAIT_LOAD=SECONDS waits up to that long for the 1-min load average to drop below
# BENCH_MAX_LOAD (2.5) before starting.
MAX_LOAD=${BENCH_MAX_LOAD:-2.5}
load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN{exit !(l > m)}' && [ "$waited" -lt "${BENCH_WAIT_LOAD:-0}" ]; do
  sleep 10; waited=$((waited + 10))
done
if awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN{exit !(l > m)}'; then
  echo "warning: load average $(load1) > $MAX_LOAD before the benchmark; results will be pessimistic" >&2
fi

echo "## Publish → displayed latency (browser)"
echo
echo "- date: $(date -u +%Y-%m-%d)"
echo "- machine: $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores, $(free -g 2>/dev/null | awk '/^Mem:/{print $2 " GiB"}') RAM, $(uname -sr)"
echo "- framecast: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (+ local changes)'), $BUILD"
echo "- node $(node --version), playwright-core $(node -p "require('./tests/browser/node_modules/playwright-core/package.json').version")"
echo "- command: scripts/latency-bench.sh (BENCH_SECONDS=${BENCH_SECONDS:-10} BENCH_WARMUP=${BENCH_WARMUP:-2}${BENCH_CONFIGS:+ BENCH_CONFIGS=$BENCH_CONFIGS})"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
node tests/browser/latency-bench.mjs
