#!/usr/bin/env bash
# The LLM table (issue 18's must-show figures): builds build/bench_llm if needed and writes docs/llm.md.
# Settings (environment): OUT (docs/llm.md), BUILD (build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build}"
if [ ! -x "$BUILD/bench_llm" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target bench_llm
fi
"$BUILD/bench_llm" --out "${OUT:-docs/llm.md}"
