#!/usr/bin/env bash
# Reproduces the README's Python table ("From Python and C": per-call overhead of `import mml` against the Swift
# API, and the 5-way 5-shot pixel-level episode against PyTorch's batched matmul + topk in the same process) and the
# Status table's "3.98x PyTorch ... ~50 us per-call overhead": RUNS runs of Benchmarks/python_overhead.py (each the
# median of 7 rounds; torch 2.13 CPU on 2 threads), alternately with tcmalloc preloaded (the peer's tuned
# configuration: runs 1, 3, 5) and without (runs 2, 4; the README's table had three and two, their order not
# recorded), summarised as ranges and medians.
#
#   scripts/python-overhead.sh [--quick]
#   environment: RUNS (default 5), TORCH_PY (default /tmp/torchpeer/bin/python, made from the CPU wheel when
#                missing), OUT (default runs/python-overhead/<date-time>), QUICK=1 (as --quick)
#
# Time: not recorded when the table was made; an estimate (not measured) from the parts of one run (2000 tiny
# calls in Python and through `mml-bench api`, 7 + 7 rounds of the episode at ~0.26 s in mml and ~1 s in PyTorch,
# importing torch) is 30-60 s per run, 3-5 minutes for the five. Needs the PyTorch peer and an idle machine.
# --quick: 2 runs of `python_overhead.py --smoke` (tiny sizes, few calls), 11 s on a busy machine; not a measurement.
# Outputs: OUT/run-<i>.json and .log, OUT/python-overhead.md (the table's rows), OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin python-overhead "$@"
mml_build
mml_torch_peer
mml_idle_check
RUNS=${RUNS:-5}
SMOKE=()
if [ "$QUICK" = 1 ]; then RUNS=2; SMOKE=(--smoke); fi
# overhead_run I N JSON: run I of N of python_overhead.py into JSON (its printout into the .log beside it), the odd
# runs with tcmalloc preloaded
overhead_run() {
  local i=$1 n=$2 json=$3 preload=()
  if [ $((i % 2)) -eq 1 ] && [ -e "$TCMALLOC" ]; then preload=(env LD_PRELOAD="$TCMALLOC"); fi
  echo "== run $i of $n$([ ${#preload[@]} -gt 0 ] && echo ' (tcmalloc preloaded)')"
  "${preload[@]}" env PYTHONPATH=python "$TORCH_PY" -u Benchmarks/python_overhead.py "${SMOKE[@]}" \
      --json "$json" | tee "${json%.json}.log"
}
mml_rounds "$RUNS" run- overhead python-overhead.md "the README's table" overhead_run
mml_end
