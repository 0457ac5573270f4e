#!/usr/bin/env bash
# Submits the evaluation array and its merge; the merge starts only when every array task succeeded
# (--dependency=afterok). The environment (MML, CKPT, DATA, OUT, EVAL_ARGS) is passed on to both jobs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CKPT:?set CKPT to the checkpoint to evaluate (.safetensors)}"
array=$(sbatch --parsable --export=ALL "$here/eval-array.sbatch")
array=${array%%;*}                                # --parsable prints "jobid[;cluster]"
sbatch --dependency="afterok:$array" --export=ALL "$here/eval-merge.sbatch"
echo "submitted array job $array and its merge; the report will be in ${OUT:-runs/eval-shards}/eval.json"
