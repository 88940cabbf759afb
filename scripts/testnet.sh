#!/usr/bin/env bash
# A two-host test network on this machine: network namespaces fc-srv (10.77.0.1) and fc-view
# (10.77.0.2) joined by a veth pair. The link from server to viewers can be shaped with tc tbf
# on the server-side veth, so the server's TCP sockets meet a real kernel bottleneck queue.
# Nothing leaves the machine: the addresses exist only inside namespaces this script creates
# and removes. Needs root (CAP_NET_ADMIN).
#
#   scripts/testnet.sh up [RATE]       create the namespaces (RATE e.g. 4mbit: shape at once)
#   scripts/testnet.sh rate RATE|off   shape (or unshape) the server -> viewer direction
#   scripts/testnet.sh split FAST SLOW two viewer links: traffic to 10.77.0.2 at FAST, to a
#                                      second viewer address 10.77.0.3 at SLOW (htb classes)
#   scripts/testnet.sh srv CMD...      run CMD in the server namespace
#   scripts/testnet.sh view CMD...     run CMD in the viewers' namespace
#   scripts/testnet.sh down            remove everything
#   scripts/testnet.sh check           exit 0 when this machine can build the network
#   scripts/testnet.sh profile NAME    print a profile: "RATE RTT_MS JITTER_MS"
#
# Shaping: tbf rate RATE burst 32kbit latency 200ms (the hardening issue's setting). This
# kernel has tbf and htb but no netem: delay and jitter come from scripts/net/delay_relay.py,
# run in the viewers' namespace behind the bottleneck (scripts/netbench.sh does this).
#
# Profiles (the link from server to viewers):
#   lan    no limit, no added delay
#   wifi   30 Mb/s, 20 ms round trip, up to 5 ms jitter
#   dsl    8 Mb/s, 40 ms
#   bad    3 Mb/s, 80 ms
#   drop   20 Mb/s and 20 ms; netbench.sh cuts it to 4 Mb/s 10 s in, restores it 20 s later
set -euo pipefail

SRV=fc-srv
VIEW=fc-view
SRV_IF=fc-s
VIEW_IF=fc-v
SRV_IP=10.77.0.1
VIEW_IP=10.77.0.2
VIEW2_IP=10.77.0.3

die() { echo "testnet: $*" >&2; exit 1; }

shape() {
  local rate=$1
  ip netns exec "$SRV" tc qdisc del dev "$SRV_IF" root 2>/dev/null || true
  if [ "$rate" != "off" ]; then
    ip netns exec "$SRV" tc qdisc add dev "$SRV_IF" root tbf rate "$rate" burst 32kbit latency 200ms
  fi
}

# Two links behind one veth: htb gives each viewer address its own rate and its own queue
# (a 200 ms pfifo at that rate, as tbf's latency setting gives the single link).
split() {
  local fast=$1 slow=$2 cls rate
  [ "$fast" = off ] && fast=10gbit
  [ "$slow" = off ] && slow=10gbit
  ip -n "$VIEW" addr add "$VIEW2_IP/24" dev "$VIEW_IF" 2>/dev/null || true
  ip netns exec "$SRV" tc qdisc del dev "$SRV_IF" root 2>/dev/null || true
  ip netns exec "$SRV" tc qdisc add dev "$SRV_IF" root handle 1: htb default 10
  for cls in 10 20; do
    rate=$fast
    [ "$cls" = 20 ] && rate=$slow
    ip netns exec "$SRV" tc class add dev "$SRV_IF" parent 1: classid "1:$cls" htb rate "$rate" ceil "$rate"
    ip netns exec "$SRV" tc qdisc add dev "$SRV_IF" parent "1:$cls" handle "$cls:" bfifo \
      limit "$(queue_bytes "$rate")"
  done
  ip netns exec "$SRV" tc filter add dev "$SRV_IF" parent 1: protocol ip u32 \
    match ip dst "$VIEW2_IP/32" flowid 1:20
}

# Bytes a link of RATE (e.g. 3mbit) sends in 200 ms, at least 64 KB.
queue_bytes() {
  python3 -c 'import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)bit", sys.argv[1])
bits = float(m[1]) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m[2]]
print(max(65536, int(bits / 8 * 0.2)))' "$1"
}

up() {
  down >/dev/null 2>&1 || true
  ip netns add "$SRV"
  ip netns add "$VIEW"
  ip link add "$SRV_IF" type veth peer name "$VIEW_IF"
  ip link set "$SRV_IF" netns "$SRV"
  ip link set "$VIEW_IF" netns "$VIEW"
  ip -n "$SRV" addr add "$SRV_IP/24" dev "$SRV_IF"
  ip -n "$VIEW" addr add "$VIEW_IP/24" dev "$VIEW_IF"
  for ns in "$SRV" "$VIEW"; do ip -n "$ns" link set lo up; done
  ip -n "$SRV" link set "$SRV_IF" up
  ip -n "$VIEW" link set "$VIEW_IF" up
  # Segmentation offloads would let the veth hand tbf 64 KB super-packets.
  ip netns exec "$SRV" ethtool -K "$SRV_IF" tso off gso off gro off >/dev/null 2>&1 || true
  if [ -n "${1:-}" ]; then shape "$1"; fi
}

down() {
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$VIEW" 2>/dev/null || true
}

profile() {
  case "$1" in
    lan) echo "off 0 0" ;;
    wifi) echo "30mbit 20 5" ;;
    dsl) echo "8mbit 40 0" ;;
    bad) echo "3mbit 80 0" ;;
    drop) echo "20mbit 20 0" ;;
    *) die "unknown profile $1 (lan, wifi, dsl, bad, drop)" ;;
  esac
}

check() {
  [ "$(id -u)" -eq 0 ] || die "needs root"
  command -v ip >/dev/null || die "needs iproute2 (ip)"
  command -v tc >/dev/null || die "needs tc (iproute2)"
  local probe=fc-probe-$$
  ip netns add "$probe" 2>/dev/null || die "cannot create network namespaces here"
  ip netns del "$probe"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) up "${1:-}" ;;
  rate) [ -n "${1:-}" ] || die "rate needs RATE or off"; shape "$1" ;;
  split) split "${1:?split FAST SLOW}" "${2:?split FAST SLOW}" ;;
  srv) exec ip netns exec "$SRV" "$@" ;;
  view) exec ip netns exec "$VIEW" "$@" ;;
  down) down ;;
  check) check ;;
  profile) profile "${1:?profile NAME}" ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
