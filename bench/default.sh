#!/usr/bin/env bash
# The standard evaluation: every model in models/ (*.onnx, not *.weights.onnx) x the clusters hetero-gpu-server,
# edge-4, edge-cpu-4, workstation-mixed and home-iot-4 (MemoriaNova's memory-poor devices) x every method, into out/bench; then docs/results.md (summary.md with
# the date and the git commit) and the plots in docs/results/. Resumable: run it again after an interruption
# and it continues where it stopped (delete out/bench to start over).
#
# Budget (2 cores, under 45 minutes): 17 models x 5 clusters = 85 problems. Loading a problem takes < 1.5 s and
# the list heuristics < 1 s together; Placeto, the MILP and GenEFlow stop at the time limit. GenEFlow starts
# from the best plan of the heuristics and the MILP, so its row runs the MILP too (twice the time limit). Two combinations run at once (the MILP then gets 1 thread each), and the
# limits are wall clock, so time-limited work overlaps. The estimate below is printed before starting.
#
# Placeto trains until the time limit, like every search method (EPISODES is only a cap; its plans record the
# episodes they got in "mode").
#
# Settings (environment): TIME_LIMIT (s, default 12), EPISODES (Placeto's cap, 100000), JOBS (2), METHODS (all),
# OUT (out/bench), MOIRAI (the binary; default build/moirai, built if missing), EXTRA (more bench options),
# DOCS (docs: where results.md and results/*.svg go), MODELS and CLUSTERS (space-separated files, for a subset),
# DRY_RUN=1 (print the estimate only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TIME_LIMIT="${TIME_LIMIT:-12}"
EPISODES="${EPISODES:-100000}"
JOBS="${JOBS:-2}"
METHODS="${METHODS:-all}"
OUT="${OUT:-out/bench}"
MOIRAI="${MOIRAI:-build/moirai}"
DOCS="${DOCS:-docs}"
read -r -a CLUSTERS <<< "${CLUSTERS:-clusters/hetero-gpu-server.json clusters/edge-4.json clusters/edge-cpu-4.json clusters/workstation-mixed.json clusters/home-iot-4.json}"

if [[ ! -x "$MOIRAI" ]]; then
  echo "building $MOIRAI ..." >&2
  cmake -S . -B "$(dirname "$MOIRAI")" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  nice cmake --build "$(dirname "$MOIRAI")" --target moirai_app -j2
fi

models=()
if [[ -n "${MODELS:-}" ]]; then
  read -r -a models <<< "$MODELS"
else
  for m in models/*.onnx; do
    [[ "$m" == *.weights.onnx ]] || models+=("$m")
  done
fi
problems=$(( ${#models[@]} * ${#CLUSTERS[@]} ))

# Estimate: per problem 2 s (load + heuristics) + Placeto (limit) + MILP (limit + 1 s) + GenEFlow
# (its seed's MILP, then its own limit), divided by the jobs running at once.
known="$("$MOIRAI" place --help | grep -o 'compare every method: .*' | sed 's/^[^:]*: //')"
if [[ "$METHODS" == all ]]; then methods="$known"; else methods="$METHODS"; fi
per_problem=2
[[ "$methods" == *placeto* ]] && per_problem=$(( per_problem + TIME_LIMIT ))
[[ "$methods" == *milp* ]] && per_problem=$(( per_problem + TIME_LIMIT + 1 ))
[[ "$methods" == *geneflow* ]] && per_problem=$(( per_problem + 2 * TIME_LIMIT + 1 ))
estimate=$(( problems * per_problem / JOBS ))
worst=$(( problems * (2 + 4 * (TIME_LIMIT + 1)) / JOBS ))
echo "bench: ${#models[@]} models x ${#CLUSTERS[@]} clusters = $problems problems; methods: $methods" >&2
echo "bench: time limit $TIME_LIMIT s, Placeto $EPISODES episodes, $JOBS jobs: about $(( estimate / 60 )) min" \
     "(at most $(( worst / 60 )) min if every search method runs to its limit)" >&2

[[ -n "${DRY_RUN:-}" ]] && exit 0

start=$(date +%s)
"$MOIRAI" bench --models "${models[@]}" --clusters "${CLUSTERS[@]}" --methods "$METHODS" \
  --time-limit "$TIME_LIMIT" --episodes "$EPISODES" --jobs "$JOBS" --out "$OUT" ${EXTRA:-}
elapsed=$(( $(date +%s) - start ))

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then commit="$commit (with uncommitted changes)"; fi
mkdir -p "$DOCS/results"
cp "$OUT"/*.svg "$DOCS/results/"
{
  echo "<!-- written by bench/default.sh; do not edit by hand -->"
  echo "# Results"
  echo
  echo "Standard evaluation of $(date -u +%Y-%m-%d) at commit $commit: \`bench/default.sh\` (time limit" \
       "$TIME_LIMIT s, Placeto $EPISODES episodes, $JOBS jobs; this run took $(( elapsed / 60 )) min $(( elapsed % 60 )) s" \
       "on $(nproc) cores). Raw rows: \`$OUT/results.csv\`."
  echo
  tail -n +3 "$OUT/summary.md"
  echo "## Plots"
  echo
  for f in "$DOCS"/results/*.svg; do echo "![$(basename "$f" .svg)](results/$(basename "$f"))"; done
} > "$DOCS/results.md.tmp"
mv "$DOCS/results.md.tmp" "$DOCS/results.md"
echo "bench: done in $(( elapsed / 60 )) min $(( elapsed % 60 )) s; wrote $DOCS/results.md and $DOCS/results/*.svg" >&2
