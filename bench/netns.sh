# Two "hosts" on this machine for the benchmarks that need separate network stacks (root only): two network
# namespaces joined by a veth pair whose ends can be shaped with tc's tbf qdisc (this kernel has no netem), and
# `moirai worker`s started inside them. Sourced by bench/run_links.sh and bench/fidelity.sh; the caller sets
# MOIRAI and traps EXIT with netns_cleanup, which stops the workers and deletes the namespaces.
NETNS=()       # namespaces made here
NETNS_ENDS=()  # "NAMESPACE DEVICE" of each veth end
NETNS_PIDS=()  # workers started here

netns_cleanup() {
  for p in "${NETNS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  NETNS=()
  NETNS_ENDS=()
  NETNS_PIDS=()
}

# netns_pair A B DEV_A DEV_B IP_A IP_B: namespaces A and B joined by a veth pair, DEV_A (IP_A/24) in A and
# DEV_B (IP_B/24) in B, both up with their loopback.
netns_pair() {
  ip netns add "$1"
  NETNS+=("$1")
  ip netns add "$2"
  NETNS+=("$2")
  ip link add "$3" type veth peer name "$4"
  ip link set "$3" netns "$1"
  ip link set "$4" netns "$2"
  ip -n "$1" addr add "$5/24" dev "$3"
  ip -n "$2" addr add "$6/24" dev "$4"
  NETNS_ENDS+=("$1 $3" "$2 $4")
  local ns dev
  for end in "${NETNS_ENDS[@]}"; do
    read -r ns dev <<< "$end"
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$dev" up
  done
}

# netns_shape RATE_MBIT: shapes every veth end of netns_pair to RATE_MBIT Mbit/s (tbf).
netns_shape() {
  local ns dev
  for end in "${NETNS_ENDS[@]}"; do
    read -r ns dev <<< "$end"
    ip netns exec "$ns" tc qdisc replace dev "$dev" root tbf rate "${1}mbit" burst 256kb latency 100ms
  done
}

# start_netns_worker NS HOST DEVICE LOG [WORKER ARGS...]: starts `moirai worker` in NS on HOST (any port), here
# rather than in a subshell so that netns_cleanup has its pid; sets ADDRESS to the address it listens on.
start_netns_worker() {
  local ns="$1" host="$2" device="$3" log="$4"
  shift 4
  ip netns exec "$ns" "$MOIRAI" worker --listen "$host:0" --device "$device" "$@" > "$log" 2>&1 &
  NETNS_PIDS+=($!)
  for _ in $(seq 400); do
    if grep -q "^listening on " "$log"; then ADDRESS=$(sed -n 's/^listening on //p' "$log" | head -1); return; fi
    sleep 0.05
  done
  echo "$(basename "$0"): worker $device did not start: $(cat "$log")" >&2
  exit 2
}
