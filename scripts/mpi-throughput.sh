#!/usr/bin/env bash
# Reproduces the MPI throughput figures (docs/DISTRIBUTED.md's measurement table; the README Status table's "2
# processes x 1 thread 1.13-1.27x one process x 2 threads"): training throughput of `mml train` as 1 process x 2
# threads against 2 processes x 1 thread (mpirun), on the same episodes (synthetic 84 x 84 x 3, Conv-64F, all
# levels, 4 episodes per step, no validation), the two alternating for ROUNDS rounds. Prints each one's
# episodes/s and, for the MPI run, the bytes gathered per optimiser step and the time of the gradient exchange per
# step (rank 0), then the ratios. Run it on an idle machine.
#
#   scripts/mpi-throughput.sh [--quick] [EPISODES] [extra mml train flags...]      (default 48 episodes)
#   environment: MML (binary, default .build/release/mml), SIZE (synthetic image side, 84), STEP (episodes per
#                step, 4), ROUNDS (alternating rounds, 2), OUT (default runs/mpi-throughput/<date-time>), QUICK=1
#
# Time: 1m39s for the defaults (`ROUNDS=2 scripts/mpi-throughput.sh 48`, docs/DISTRIBUTED.md, measured when the
# table was made). --quick: 8 episodes (2 steps), 1 round, 30 s on a busy machine; not a measurement.
# Outputs: OUT/one-<r>/ and OUT/two-<r>/ (the runs), OUT/rates.log (their rate lines), OUT/mpi-throughput.md (rates and ratios), OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin mpi-throughput "$@"
mml_build
mml_idle_check
set -- ${ARGS[@]+"${ARGS[@]}"}
EPISODES=${1:-48}
shift || true
MML=${MML:-.build/release/mml}
STEP=${STEP:-4}
ROUNDS=${ROUNDS:-2}
if [ "$QUICK" = 1 ]; then EPISODES=8; ROUNDS=1; fi
DATA=(synthetic --synthetic-size "${SIZE:-84}")
FLAGS=(--episodes-per-epoch "$EPISODES" --epochs 1 --episodes-per-step "$STEP" --val-split none
       --log-every "$EPISODES" "$@")
LAUNCH=(mpirun --oversubscribe)
if [ "$(id -u)" -eq 0 ]; then LAUNCH+=(--allow-run-as-root); fi
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: 1 process x 2 threads" | tee -a "$OUT/rates.log"
  OPENBLAS_NUM_THREADS=2 "$MML" train "${DATA[@]}" "${FLAGS[@]}" --threads 2 --out "$OUT/one-$r" | grep -E '^trained' \
      | tee -a "$OUT/rates.log"
  echo "== round $r: 2 processes x 1 thread" | tee -a "$OUT/rates.log"
  "${LAUNCH[@]}" -np 2 -x OPENBLAS_NUM_THREADS=1 "$MML" train "${DATA[@]}" "${FLAGS[@]}" --threads 1 \
      --out "$OUT/two-$r" | grep -E '^trained|^exchange' | tee -a "$OUT/rates.log"
done
scripts/summarize.py mpi "$OUT/rates.log" > "$OUT/mpi-throughput.md"
echo "== the rates ($OUT/mpi-throughput.md)"
cat "$OUT/mpi-throughput.md"
mml_end
