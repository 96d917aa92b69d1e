#!/usr/bin/env bash
# Serving evaluation (issue 19): for resnet50, vit_b_16, bert_base, llama2_7b (prefill, 512 tokens) and
# llama2_7b_decode (one token per step, a KV cache of CONTEXT tokens per sequence in flight, so its rate is
# tokens/s) on workstation-mixed, hetero-gpu-server and dgx-a100-8, the throughput of three plans under one
# stream: the best single device ("single"), the latency-optimal plan ("milp", the reference) and the
# throughput plan ("throughput": stage DP + period MILP). Writes out/bench-throughput and docs/throughput.md.
# Targets (issue 19): on dgx-a100-8 the throughput plan >= 6x the single-GPU rate for models that fit; on the
# mixed clusters >= 1.5x the latency plan's rate. docs/throughput.md lists both ratios for every problem.
#
# Settings (environment): TIME_LIMIT (s, default 12, for milp and throughput alike), JOBS (2), REQUESTS (64,
# requests per stream), CONTEXT (2048, tokens in each decode sequence's cache), OUT (out/bench-throughput),
# MOIRAI (build/moirai, built if missing), DOCS (docs).
# Resumable like bench/default.sh (delete OUT to start over).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TIME_LIMIT="${TIME_LIMIT:-12}"
JOBS="${JOBS:-2}"
REQUESTS="${REQUESTS:-64}"
CONTEXT="${CONTEXT:-2048}"
OUT="${OUT:-out/bench-throughput}"
MOIRAI="${MOIRAI:-build/moirai}"
DOCS="${DOCS:-docs}"
if [[ ! -x "$MOIRAI" ]]; then
  echo "building $MOIRAI ..." >&2
  cmake -S . -B "$(dirname "$MOIRAI")" -DCMAKE_BUILD_TYPE=Release >/dev/null
  nice cmake --build "$(dirname "$MOIRAI")" --target moirai_app -j2
fi
models=(models/resnet50.onnx models/vit_b_16.onnx models/bert_base.onnx models/llama2_7b.onnx
        models/decode/llama2_7b_decode.onnx)
clusters=(clusters/workstation-mixed.json clusters/hetero-gpu-server.json clusters/dgx-a100-8.json)

start=$(date +%s)
"$MOIRAI" bench --models "${models[@]}" --clusters "${clusters[@]}" --methods single,milp,throughput \
  --time-limit "$TIME_LIMIT" --jobs "$JOBS" --requests "$REQUESTS" --context "$CONTEXT" --out "$OUT"
elapsed=$(( $(date +%s) - start ))

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then commit="$commit (with uncommitted changes)"; fi
mkdir -p "$DOCS"
{
  echo "<!-- written by bench/throughput.sh; do not edit by hand -->"
  tail -n +1 "$OUT/throughput.md" | head -n 1
  echo
  echo "Run of $(date -u +%Y-%m-%d) at commit $commit: \`bench/throughput.sh\` (time limit $TIME_LIMIT s for milp" \
       "and throughput, $REQUESTS requests per stream, decode context $CONTEXT tokens, $JOBS jobs; this run took $(( elapsed / 60 )) min" \
       "$(( elapsed % 60 )) s on $(nproc) cores). Raw rows: \`$OUT/results.csv\`."
  tail -n +2 "$OUT/throughput.md"
} > "$DOCS/throughput.md.tmp"
mv "$DOCS/throughput.md.tmp" "$DOCS/throughput.md"
echo "wrote $DOCS/throughput.md" >&2
