#!/usr/bin/env bash
# Plans run for real on local workers: for each model (real weights), a plan by METHOD on CLUSTER, run with
# `moirai run --local` (one worker per device, THREADS intra-op threads each) at concurrency 1 and 2. Prints
# predicted vs measured median latency, p90, throughput (measured, and the stream simulator's for the same plan
# with as many requests in flight: `moirai simulate --requests --in-flight`) and whether the outputs match the
# original model.
#
# Settings (environment): MODELS (default "squeezenet1_1 gpt_tiny llama_tiny"), METHOD (heft), CLUSTER
# (tests/fixtures/run/local-2.json: two 1-thread CPU workers), THREADS (1), REQUESTS (30), WARMUP (3),
# OUT (out/run-local), MOIRAI (build/moirai). Models are read from models/ or ../shared/models/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
read -r -a MODELS <<< "${MODELS:-squeezenet1_1 gpt_tiny llama_tiny}"
METHOD="${METHOD:-heft}"
CLUSTER="${CLUSTER:-tests/fixtures/run/local-2.json}"
THREADS="${THREADS:-1}"
REQUESTS="${REQUESTS:-30}"
WARMUP="${WARMUP:-3}"
OUT="${OUT:-out/run-local}"
MOIRAI="${MOIRAI:-build/moirai}"

find_model() {
  for d in models ../shared/models; do [ -f "$d/$1" ] && { echo "$d/$1"; return; }; done
  echo "run_local.sh: $1 is in neither models/ nor ../shared/models/" >&2
  exit 2
}

printf '%-14s %-6s %4s %12s %12s %12s %10s %10s %8s %s\n' model method conc "predicted" "median" "p90" "req/s" \
  "sim req/s" "stages" outputs
for model in "${MODELS[@]}"; do
  stripped=$(find_model "$model.onnx")
  weights=$(find_model "$model.weights.onnx")
  dir="$OUT/$model"
  mkdir -p "$dir"
  "$MOIRAI" place "$stripped" -c "$CLUSTER" -m "$METHOD" --out "$dir/plan" > "$dir/place.log" 2>&1
  for conc in 1 2; do
    "$MOIRAI" run "$dir/plan/plan.json" "$weights" --local --threads "$THREADS" --requests "$REQUESTS" \
      --warmup "$WARMUP" --concurrency "$conc" --out "$dir/c$conc" > "$dir/c$conc.log" 2>&1 ||
      { echo "$model: run failed: $(tail -1 "$dir/c$conc.log")"; continue; }
    sim_rps=$("$MOIRAI" simulate "$dir/plan/plan.json" --requests "$REQUESTS" --in-flight "$conc" |
      sed -n 's/^ *throughput *\([0-9.]*\) requests.*/\1/p')
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const stages = r.devices.reduce((n, d) => n + d.stages.length, 0);
      console.log(`${process.argv[2].padEnd(14)} ${r.method.padEnd(6)} ${String(r.concurrency).padStart(4)} ` +
        `${r.predicted_ms.toFixed(2).padStart(9)} ms ${r.measured_median_ms.toFixed(2).padStart(9)} ms ` +
        `${r.measured_p90_ms.toFixed(2).padStart(9)} ms ${r.throughput_rps.toFixed(1).padStart(10)} ` +
        `${Number(process.argv[3]).toFixed(1).padStart(10)} ` +
        `${String(stages).padStart(8)} ${r.outputs_match ? "match" : "DIFFER"} (max |diff| ${r.max_abs_diff.toExponential(1)})`);
    ' "$dir/c$conc/run.json" "$model" "$sim_rps"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
