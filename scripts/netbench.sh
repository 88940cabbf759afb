#!/usr/bin/env bash
# A live stream over a named network profile (scripts/testnet.sh): the server in one network
# namespace, the bottleneck (tc tbf) on its veth, and in the viewers' namespace the delay
# relay (scripts/net/delay_relay.py: round trip and jitter, which netem would give elsewhere)
# and acking viewers (examples/probe.rs) behind it. Prints one JSON line. Needs root.
#
#   scripts/netbench.sh PROFILE INPUT [SECONDS]
#
# PROFILE: lan, wifi, dsl, bad or drop (20 Mb/s, cut to 4 Mb/s 10 s in, restored 20 s later).
# INPUT: raw rgb24 frames of SIZE (default 1920x1080), looped at 30 fps; or pattern:NAME for
#   framecast's built-in pattern NAME at SIZE.
# Environment:
#   SERVER         framecast (default) or pdum (pdum.rfb 0.3 from .peer/, scripts/browser-test.sh)
#   SERVER_ARGS    extra server arguments (framecast: --no-adaptive; pdum: --adaptive)
#   VIEWERS        acking viewers (default 1)
#   SLOW_PROFILE   a second viewer on its own link with this profile's rate and delay (the first
#                  keeps PROFILE's; not with drop): the JSON gains "slow_result", and METRICS
#                  shows whether the two viewers share an encoder tier
#   VIEWER         probe (default: examples/probe.rs, acks on receipt) or chromium (framecast's
#                  own viewer page in headless Chromium, decoding with WebCodecs and acking on
#                  display: tests/browser/netview.mjs; one viewer, framecast servers only)
#   BITRATE        framecast's --bitrate (default 8M)
#   SAMPLES        write the probe's per-frame samples here (examples/probe.rs --samples)
#   METRICS        write the server's /streams/default/metrics (framecast) here, the last taken
#                  with viewers connected; every second's go to $METRICS.trace (with unix_s)
#   FRAMECAST_BIN  default target/release/framecast; PROBE_BIN default target/release/examples/probe
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:?usage: netbench.sh PROFILE INPUT [SECONDS]}
input=${2:?usage: netbench.sh PROFILE INPUT [SECONDS]}
seconds=${3:-60}
size=${SIZE:-1920x1080}
server=${SERVER:-framecast}
bin=${FRAMECAST_BIN:-target/release/framecast}
probe=${PROBE_BIN:-target/release/examples/probe}
net=scripts/testnet.sh
read -r rate rtt jitter <<<"$($net profile "$profile")"

[ -x "$probe" ] || { echo "no $probe: cargo build --release -p framecast-stream --example probe" >&2; exit 1; }
log=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  $net down
  rm -rf "$log"
}
trap cleanup EXIT
$net up "$rate"
if [ -n "${SLOW_PROFILE:-}" ]; then
  [ "$profile" != drop ] || { echo "SLOW_PROFILE does not combine with drop" >&2; exit 1; }
  read -r slow_rate slow_rtt slow_jitter <<<"$($net profile "$SLOW_PROFILE")"
  $net split "$rate" "$slow_rate"
fi

offset_args=()
if [ "$server" = pdum ]; then
  # shellcheck disable=SC2086 # SERVER_ARGS holds separate words on purpose
  $net srv .peer/bin/python scripts/peer/pdum_serve.py "$input" --size "$size" --host 10.77.0.1 \
    --port 8765 --offset-file "$log/offset" ${SERVER_ARGS:-} >"$log/server.log" 2>&1 &
else
  [ -x "$bin" ] || { echo "no $bin: cargo build --release -p framecast-cli" >&2; exit 1; }
  if [[ $input == pattern:* ]]; then
    source_args=(--pattern "${input#pattern:}" --size "$size" --fps 30)
  else
    source_args=("$input" --format rgb24 --size "$size" --loop)
  fi
  # shellcheck disable=SC2086
  $net srv "$bin" serve "${source_args[@]}" --listen 10.77.0.1:8765 \
    --bitrate "${BITRATE:-8M}" ${SERVER_ARGS:-} >"$log/server.log" 2>&1 &
fi
pids+=($!)
$net view python3 scripts/net/delay_relay.py --listen 127.0.0.1:9000 --to 10.77.0.1:8765 \
  --rtt-ms "$rtt" --jitter-ms "$jitter" >"$log/relay.log" 2>&1 &
pids+=($!)
if [ -n "${SLOW_PROFILE:-}" ]; then
  $net view python3 scripts/net/delay_relay.py --listen 127.0.0.1:9001 --to 10.77.0.1:8765 \
    --rtt-ms "$slow_rtt" --jitter-ms "$slow_jitter" --source 10.77.0.3 >"$log/relay2.log" 2>&1 &
  pids+=($!)
fi
for _ in $(seq 100); do
  $net view bash -c 'exec 3<>/dev/tcp/10.77.0.1/8765 && exec 4<>/dev/tcp/127.0.0.1/9000 &&
    { [ -z "$1" ] || exec 5<>/dev/tcp/127.0.0.1/9001; }' _ "${SLOW_PROFILE:-}" 2>/dev/null && break
  sleep 0.2
done
if [ "$server" = pdum ]; then
  for _ in $(seq 50); do [ -s "$log/offset" ] && break; sleep 0.2; done
  offset_args=(--clock-offset-us "$(cat "$log/offset")")
fi
if [ "$profile" = drop ]; then
  # The rate changes, with their Unix times in $SAMPLES.events when SAMPLES is set.
  events=${SAMPLES:+$SAMPLES.events}
  events=${events:-/dev/null}
  : >"$events"
  ( sleep 10; $net rate 4mbit; echo "$(date +%s.%N) 4mbit" >>"$events"
    sleep 20; $net rate 20mbit; echo "$(date +%s.%N) 20mbit" >>"$events" ) &
  pids+=($!)
fi
if [ -n "${METRICS:-}" ]; then
  # While the viewers are still connected: every second into $METRICS.trace, the last to $METRICS.
  ( for _ in $(seq "${seconds%.*}"); do
      sleep 1
      $net view python3 -c 'import json, sys, time, urllib.request
m = json.load(urllib.request.urlopen(sys.argv[1], timeout=5)); m["unix_s"] = time.time(); print(json.dumps(m))' \
        http://10.77.0.1:8765/streams/default/metrics >>"$METRICS.trace" 2>/dev/null || true
    done ) &
  pids+=($!)
fi
sample_args=()
[ -n "${SAMPLES:-}" ] && sample_args=(--samples "$SAMPLES")
if [ "${VIEWER:-probe}" = chromium ]; then
  [ "$server" = framecast ] || { echo "VIEWER=chromium needs SERVER=framecast" >&2; exit 1; }
  result=$($net view node tests/browser/netview.mjs --url http://127.0.0.1:9000/ \
    --seconds "$seconds") || {
    echo "chromium viewer failed; server log:" >&2; tail -20 "$log/server.log" "$log/relay.log" >&2; exit 1; }
else
  if [ -n "${SLOW_PROFILE:-}" ]; then
    $net view "$probe" --url ws://127.0.0.1:9001/ --viewers 1 --seconds "$seconds" --json \
      "${offset_args[@]}" >"$log/slow.json" 2>"$log/slow.err" &
    pids+=($!)
  fi
  result=$($net view "$probe" --url ws://127.0.0.1:9000/ --viewers "${VIEWERS:-1}" \
    --seconds "$seconds" --json "${offset_args[@]}" "${sample_args[@]}") || {
    echo "probe failed; server log:" >&2; tail -20 "$log/server.log" "$log/relay.log" >&2; exit 1; }
fi
if [ -n "${METRICS:-}" ]; then
  { grep -sE '"viewers": ?\[\{' "$METRICS.trace" || true; } | tail -1 >"$METRICS"
fi
slow=""
if [ -n "${SLOW_PROFILE:-}" ]; then
  for _ in $(seq 50); do [ -s "$log/slow.json" ] && break; sleep 0.2; done
  [ -s "$log/slow.json" ] || { echo "the slow viewer's probe failed:" >&2; cat "$log/slow.err" >&2; exit 1; }
  slow=",\"slow_profile\":\"$SLOW_PROFILE\",\"slow_result\":$(cat "$log/slow.json")"
fi
echo "{\"profile\":\"$profile\",\"server\":\"$server\",\"server_args\":\"${SERVER_ARGS:-}\",\"result\":$result$slow}"
