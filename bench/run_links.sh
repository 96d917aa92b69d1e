#!/usr/bin/env bash
# Link emulation check (a benchmark, not a unit test; needs root): two workers in separate network namespaces
# joined by a veth pair shaped with tc's tbf qdisc to RATE, a 2-device cluster whose link has that bandwidth,
# squeezenet1_1 placed on it with m-topo (which cuts the graph whatever the link costs), then `moirai run`.
# Prints, per link and rate, the measured transfer time per request (median, push to acknowledgement) against
# the cost model's (the plan's transfers: latency + bytes / bandwidth), and whether they agree within TOL.
#
# Settings (environment): RATES (Mbit/s, default "100 1000"), REQUESTS (20), MODEL (squeezenet1_1), METHOD
# (m-topo), LATENCY_US (the link latency written into the cluster, default 200), TOL (0.15), OUT (out/run-links),
# MOIRAI (build/moirai). Exit status 1 when any link is off by more than TOL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source bench/netns.sh
read -r -a RATES <<< "${RATES:-100 1000}"
REQUESTS="${REQUESTS:-20}"
MODEL="${MODEL:-squeezenet1_1}"
METHOD="${METHOD:-m-topo}"
LATENCY_US="${LATENCY_US:-200}"
TOL="${TOL:-0.15}"
OUT="${OUT:-out/run-links}"
MOIRAI="${MOIRAI:-build/moirai}"
WEIGHTS="models/$MODEL.weights.onnx"
[ -f "$WEIGHTS" ] || WEIGHTS="../shared/models/$MODEL.weights.onnx"
[ -f "$WEIGHTS" ] || { echo "run_links.sh: no $MODEL.weights.onnx in models/ or ../shared/models/" >&2; exit 2; }
STRIPPED="models/$MODEL.onnx"
[ -f "$STRIPPED" ] || STRIPPED="$WEIGHTS"

A="moirai-bench-$$-a"
B="moirai-bench-$$-b"
trap netns_cleanup EXIT
netns_pair "$A" "$B" "mvba$$" "mvbb$$" 10.77.0.2 10.77.0.3

mkdir -p "$OUT"
start_netns_worker "$A" 10.77.0.2 w0 "$OUT/worker-w0.log"
W0=$ADDRESS
start_netns_worker "$B" 10.77.0.3 w1 "$OUT/worker-w1.log"
W1=$ADDRESS
status=0
printf '%-10s %-12s %12s %14s %14s %8s\n' rate link bytes "model ms" "measured ms" error
for rate in "${RATES[@]}"; do
  netns_shape "$rate"
  dir="$OUT/${rate}mbit"
  mkdir -p "$dir"
  gbps=$(node -e "console.log(${rate} / 8 / 1000)")
  cat > "$dir/cluster.json" <<JSON
{
  "name": "netns-${rate}mbit",
  "description": "Two workers in network namespaces, veth shaped with tc tbf to ${rate} Mbit/s (bench/run_links.sh).",
  "devices": [
    {"name": "w0", "kind": "cpu", "peak_gflops": 100, "mem_bandwidth_gbps": 8.0, "memory_gib": 8, "kernel_launch_us": 5},
    {"name": "w1", "kind": "cpu", "peak_gflops": 100, "mem_bandwidth_gbps": 8.0, "memory_gib": 8, "kernel_launch_us": 5}
  ],
  "links": {"default": {"bandwidth_gbps": ${gbps}, "latency_us": ${LATENCY_US}}}
}
JSON
  "$MOIRAI" place "$STRIPPED" -c "$dir/cluster.json" -m "$METHOD" --out "$dir/plan" > "$dir/place.log" 2>&1
  ip netns exec "$A" "$MOIRAI" run "$dir/plan/plan.json" "$WEIGHTS" --workers "w0=$W0,w1=$W1" \
    --requests "$REQUESTS" --out "$dir/run" > "$dir/run.log"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const [rate, tol] = [process.argv[2], Number(process.argv[3])];
    let bad = 0;
    for (const l of r.links) {
      const err = (l.time_measured_ms - l.time_predicted_ms) / l.time_predicted_ms;
      bad += Math.abs(err) > tol;
      console.log(`${(rate + "Mbit").padEnd(10)} ${(l.src + "->" + l.dst).padEnd(12)} ${String(l.bytes_measured).padStart(12)} ` +
        `${l.time_predicted_ms.toFixed(2).padStart(14)} ${l.time_measured_ms.toFixed(2).padStart(14)} ${(100 * err).toFixed(0).padStart(7)}%`);
    }
    process.exit(bad ? 1 : 0);
  ' "$dir/run/run.json" "$rate" "$TOL" || status=1
done
[ "$status" -eq 0 ] && echo "every link within $(node -e "console.log(100 * $TOL)")% of the cost model" ||
  echo "some links are off by more than $(node -e "console.log(100 * $TOL)")% (see above)"
exit "$status"
