#!/usr/bin/env bash
# Training throughput of `mml train` on this machine: 1 process x 2 threads against 2 processes x 1 thread
# (mpirun), on the same episodes (docs/DISTRIBUTED.md). Prints each one's episodes/s and, for the MPI run, the bytes
# gathered per optimiser step and the time of the gradient exchange per step (rank 0). Run it on an idle machine.
#
#   scripts/mpi-throughput.sh [EPISODES] [extra mml train flags...]      (default 96 episodes)
#   environment: MML (binary, default .build/release/mml), SIZE (synthetic image side, 84), STEP (episodes per
#                step, 4), ROUNDS (alternating rounds, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES=${1:-96}
shift || true
MML=${MML:-.build/release/mml}
STEP=${STEP:-4}
ROUNDS=${ROUNDS:-1}
DATA=(synthetic --synthetic-size "${SIZE:-84}")
FLAGS=(--episodes-per-epoch "$EPISODES" --epochs 1 --episodes-per-step "$STEP" --val-split none
       --log-every "$EPISODES" "$@")
LAUNCH=(mpirun --oversubscribe)
if [ "$(id -u)" -eq 0 ]; then LAUNCH+=(--allow-run-as-root); fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: 1 process x 2 threads"
  OPENBLAS_NUM_THREADS=2 "$MML" train "${DATA[@]}" "${FLAGS[@]}" --threads 2 --out "$tmp/one-$r" | grep -E '^trained'
  echo "== round $r: 2 processes x 1 thread"
  "${LAUNCH[@]}" -np 2 -x OPENBLAS_NUM_THREADS=1 "$MML" train "${DATA[@]}" "${FLAGS[@]}" --threads 1 \
      --out "$tmp/two-$r" | grep -E '^trained|^exchange'
done
