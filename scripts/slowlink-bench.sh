#!/usr/bin/env bash
# framecast serve on a shaped link: the server in one network namespace, acking viewers
# (examples/probe.rs) in another, the server -> viewer direction limited by tc tbf
# (scripts/testnet.sh). Prints one JSON line per run. Needs root.
#
#   scripts/slowlink-bench.sh INPUT [RATE] [SECONDS]
#
# Environment:
#   FRAMECAST_BIN   the framecast binary (default target/release/framecast)
#   PROBE_BIN       the probe (default target/release/examples/probe)
#   RUNS            "viewers:extra serve args;..." (default "1:;2:;1:--bitrate 2M;2:--bitrate 2M")
#   SERVER          framecast (default) or pdum: pdum.rfb 0.3 (scripts/peer/pdum_serve.py in
#                   .peer/, set up by scripts/browser-test.sh) serving INPUT, which must then be
#                   raw rgb24 with SIZE (default 1920x1080); pdum's extra args are its own
#                   (--bitrate N, --adaptive).
set -euo pipefail
cd "$(dirname "$0")/.."

input=${1:?usage: slowlink-bench.sh INPUT [RATE] [SECONDS]}
rate=${2:-4mbit}
seconds=${3:-30}
bin=${FRAMECAST_BIN:-target/release/framecast}
probe=${PROBE_BIN:-target/release/examples/probe}
runs=${RUNS:-"1:;2:;1:--bitrate 2M;2:--bitrate 2M"}

[ -x "$bin" ] || { echo "no $bin: cargo build --release -p framecast-cli" >&2; exit 1; }
[ -x "$probe" ] || { echo "no $probe: cargo build --release -p framecast-stream --example probe" >&2; exit 1; }

net=scripts/testnet.sh
trap '$net down' EXIT
$net up "$rate"

IFS=';' read -ra list <<<"$runs"
for run in "${list[@]}"; do
  viewers=${run%%:*}
  extra=${run#*:}
  offset_args=()
  if [ "${SERVER:-framecast}" = pdum ]; then
    rm -f /tmp/slowlink-offset
    # shellcheck disable=SC2086 # extra holds separate words on purpose
    $net srv .peer/bin/python scripts/peer/pdum_serve.py "$input" --size "${SIZE:-1920x1080}" \
      --host 10.77.0.1 --port 8765 --offset-file /tmp/slowlink-offset $extra >/tmp/slowlink-server.log 2>&1 &
  else
    # shellcheck disable=SC2086
    $net srv "$bin" serve "$input" --loop --listen 10.77.0.1:8765 $extra >/tmp/slowlink-server.log 2>&1 &
  fi
  server=$!
  for _ in $(seq 50); do
    $net view bash -c 'exec 3<>/dev/tcp/10.77.0.1/8765' 2>/dev/null && break
    sleep 0.2
  done
  if [ "${SERVER:-framecast}" = pdum ]; then
    for _ in $(seq 50); do [ -s /tmp/slowlink-offset ] && break; sleep 0.2; done
    offset_args=(--clock-offset-us "$(cat /tmp/slowlink-offset)")
  fi
  result=$($net view "$probe" --url ws://10.77.0.1:8765/ --viewers "$viewers" --seconds "$seconds" --json "${offset_args[@]}")
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  echo "{\"server\":\"${SERVER:-framecast}\",\"rate\":\"$rate\",\"serve_args\":\"$extra\",\"result\":$result}"
done
