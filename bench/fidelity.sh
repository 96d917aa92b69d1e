#!/usr/bin/env bash
# Simulator fidelity: does the calibrated cost model predict what the executor really takes? For each model
# (real weights) it measures this machine (`moirai profile --threads T --devices 2`: every coarse group as its own
# session, and the per-stage call overhead), places the model on that measured 2-worker cluster with each method,
# exports the plan and runs the sub-models for real, then compares predicted with measured time. Writes
# docs/fidelity.md. A benchmark, not a test: about 1-2 minutes per model on the 2-core machine.
#
# Section "Sequential runner": tools/run_plan.mjs runs the stages one after another in one process, so its
# end-to-end time is the sum of the stage times; the prediction it is compared with is the simulator's sum of
# per-stage times (busy time of all devices: operators plus one overhead per stage). A section for the
# distributed run (one worker per device, concurrent) is meant to be appended by a function of its own below.
#
# Settings (environment): MODELS (names; NAME.weights.onnx from models/ or ../shared/models), METHODS (single heft
# milp), THREADS (1), REPEATS (timed runs, median, default 30), TIME_LIMIT (s, milp, 10), OUT (out/fidelity),
# DOCS (docs), MOIRAI (build/moirai).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
read -r -a MODELS <<< "${MODELS:-squeezenet1_1 gpt_tiny llama_tiny}"
read -r -a METHODS <<< "${METHODS:-single heft milp}"
THREADS="${THREADS:-1}"
REPEATS="${REPEATS:-30}"
TIME_LIMIT="${TIME_LIMIT:-10}"
OUT="${OUT:-out/fidelity}"
DOCS="${DOCS:-docs}"
MOIRAI="${MOIRAI:-build/moirai}"
[[ -x "$MOIRAI" ]] || { echo "fidelity.sh: $MOIRAI is not built (cmake --build build --target moirai_app)" >&2; exit 2; }
command -v node >/dev/null || { echo "fidelity.sh: node is needed (scripts/setup installs it)" >&2; exit 2; }

weights_of() {
  for dir in models ../shared/models; do
    [[ -f "$dir/$1.weights.onnx" ]] && { echo "$dir/$1.weights.onnx"; return; }
  done
  echo "fidelity.sh: no $1.weights.onnx in models/ or ../shared/models" >&2
  exit 2
}

# One row per (model, method) into $OUT/sequential.jsonl.
section_sequential() {
  : > "$OUT/sequential.jsonl"
  for model in "${MODELS[@]}"; do
    local w dir
    w="$(weights_of "$model")"
    dir="$OUT/$model"
    echo "== $model: profile ($THREADS thread(s), $REPEATS repeats)" >&2
    "$MOIRAI" profile "$w" -c clusters/local-cpu.json --device cpu --devices 2 --threads "$THREADS" \
      --repeats "$REPEATS" --out "$dir/measured" > "$dir.profile.txt"
    for method in "${METHODS[@]}"; do
      echo "== $model: $method" >&2
      "$MOIRAI" place "$w" -c "$dir/measured/cluster.json" --profile "$dir/measured/profile.json" -m "$method" \
        --time-limit "$TIME_LIMIT" --out "$dir/$method" > /dev/null
      "$MOIRAI" export "$dir/$method/plan.json" "$w" --out "$dir/$method/export" > /dev/null
      node tools/run_plan.mjs "$dir/$method/export/manifest.json" --threads "$THREADS" --repeats "$REPEATS" \
        --warmup 3 --json > "$dir/$method/run.json" 2> "$dir/$method/run.txt"
      node -e '
        const fs = require("fs");
        const [model, method, planPath, runPath, manifestPath] = process.argv.slice(1);
        const plan = JSON.parse(fs.readFileSync(planPath)), run = JSON.parse(fs.readFileSync(runPath));
        const manifest = JSON.parse(fs.readFileSync(manifestPath));
        const busy = plan.devices.reduce((a, d) => a + d.busy_ms, 0);
        const stages = plan.devices.reduce((a, d) => a + (d.stages ?? 0), 0);
        console.log(JSON.stringify({ model, method, makespan_ms: plan.makespan_ms, predicted_ms: busy,
          measured_ms: run.split_ms, whole_model_ms: run.original_ms, stages, submodels: manifest.submodels.length,
          devices: plan.devices.filter((d) => d.busy_ms > 0).length, match: run.match, max_abs_diff: run.max_abs_diff }));
      ' "$model" "$method" "$dir/$method/plan.json" "$dir/$method/run.json" "$dir/$method/export/manifest.json" \
        >> "$OUT/sequential.jsonl"
    done
  done
}

write_doc() {
  node -e '
    const fs = require("fs");
    const [out, threads, repeats, commit, date, cpu] = process.argv.slice(1);
    const rows = fs.readFileSync(out + "/sequential.jsonl", "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const pct = (p, m) => `${(100 * (p - m) / m >= 0 ? "+" : "")}${(100 * (p - m) / m).toFixed(1)}%`;
    let md = `# Simulator fidelity: predicted vs measured\n\n`;
    md += `Written by \`bench/fidelity.sh\` on ${date} (commit ${commit}; ${cpu}). Every figure is the median of ${repeats} `;
    md += `timed runs after warm-up, ${threads} intra-op thread(s) per session, real weights, on a machine shared with `;
    md += `other jobs. Cost model: \`moirai profile --threads ${threads} --devices 2\` on the same machine just before `;
    md += `(per-group compute time and the per-stage call overhead, in \`profile.json\` and \`cluster.json\`).\n\n`;
    md += `## Sequential runner (one process, stages one after another)\n\n`;
    md += `\`tools/run_plan.mjs\` runs the exported stages in order, so the measured end-to-end time is the sum of `;
    md += `the stage times; the prediction is the simulator'"'"'s sum of per-stage times (busy time of every device: its `;
    md += `operators plus one overhead per stage). "stages" counts the simulated stages and the exported sub-models `;
    md += `(they must agree: both come from the same stage assignment).\n\n`;
    md += `| model | plan | devices used | stages (sim / export) | predicted ms | measured ms | error | makespan ms (parallel) | whole model, one session ms | outputs |\n`;
    md += `|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n`;
    let worst = 0;
    for (const r of rows) {
      worst = Math.max(worst, Math.abs(r.predicted_ms - r.measured_ms) / r.measured_ms);
      md += `| ${r.model} | ${r.method} | ${r.devices} | ${r.stages} / ${r.submodels} | ${r.predicted_ms.toFixed(3)} | `;
      md += `${r.measured_ms.toFixed(3)} | ${pct(r.predicted_ms, r.measured_ms)} | ${r.makespan_ms.toFixed(3)} | `;
      md += `${r.whole_model_ms.toFixed(3)} | ${r.match ? "equal" : "DIFFER"} (max abs diff ${r.max_abs_diff.toExponential(1)}) |\n`;
    }
    md += `\nLargest |error|: ${(100 * worst).toFixed(1)}% (target 10%).\n`;
    fs.writeFileSync(out + "/fidelity.md", md);
  ' "$OUT" "$THREADS" "$REPEATS" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(date -u +%Y-%m-%d)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
}

mkdir -p "$OUT"
section_sequential
write_doc
# Further sections (the distributed run) append to $OUT/fidelity.md here, before it is published.
mkdir -p "$DOCS"
cp "$OUT/fidelity.md" "$DOCS/fidelity.md.tmp" && mv "$DOCS/fidelity.md.tmp" "$DOCS/fidelity.md"
echo "wrote $DOCS/fidelity.md" >&2
