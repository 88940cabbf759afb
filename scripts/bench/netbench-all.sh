#!/usr/bin/env bash
# Every profile of the test network (lan, wifi, dsl, bad, drop) with framecast's congestion
# control on (the default), off (--no-adaptive), and pdum.rfb 0.3 with adaptive=True, one
# after another on the same machine: one JSON line each (scripts/netbench.sh). Needs root,
# target/release/framecast and target/release/examples/probe, and the pdum.rfb peer in .peer/
# (scripts/browser-test.sh sets it up).
#
#   scripts/bench/netbench-all.sh FRAMES.rgb [SECONDS] [PROFILES]
set -euo pipefail
cd "$(dirname "$0")/../.."
input=${1:?usage: netbench-all.sh FRAMES.rgb [SECONDS] [PROFILES]}
seconds=${2:-60}
for profile in ${3:-lan wifi dsl bad drop}; do
  SERVER=framecast SERVER_ARGS="" scripts/netbench.sh "$profile" "$input" "$seconds"
  SERVER=framecast SERVER_ARGS="--no-adaptive" scripts/netbench.sh "$profile" "$input" "$seconds"
  SERVER=pdum SERVER_ARGS="--adaptive" scripts/netbench.sh "$profile" "$input" "$seconds"
done
