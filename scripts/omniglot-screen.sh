#!/usr/bin/env bash
# Reproduces the README's Omniglot recipe screening (issue 18 item 3): short runs that change one thing of recipe R1
# at a time, trained on the Vinyals train split (4112 classes) and scored on the validation split (688 classes), so
# that the choice of the next recipe never looks at the test classes. Each variant: R1's `mml train` command
# (ink as 1, area resize, 30-way 1-shot 5 queries, one episode per Adam step, cosine schedule, pixel K = 3, seed 1)
# shortened to 2000 episodes, then `mml eval` on the same 600 validation episodes (seed 0) of 20-way and 5-way
# 1-shot, fused and each level alone. Differences under about 0.2 points are within the spread of one seed.
#   scripts/omniglot-screen.sh [--quick] [OMNIGLOT_ROOT] [RUN_DIR]
#   OMNIGLOT_ROOT: default $OMNIGLOT or ../shared/datasets/omniglot; RUN_DIR: default $OUT or runs/omniglot-screen
#   environment: VARIANTS (default "base w128 k1 aug w60 pre"): which rows to run, in order (also: w60bn w60lr w60sh w60shlr w60shlrbn w60shlr3 w60shlrc w60shlrc1 w60shlr5w w60shlr5wl w60shlrw w60shlrq);
#   THREADS=n: the kernels' threads (default all cores)
#   (--quick or QUICK=1: 20 episodes per variant, 1 pre-training epoch of 5 batches, 10 validation episodes, into
#   runs/omniglot-screen-quick; its numbers mean nothing)
# The variants (flags added to R1's command):
#   base  none                      w128  --widths 64,64,128,128      k1   --pixel-k 1
#   aug   --augment mml             w60   --way 60
#   pre   --init from `mml pretrain` (Conv-64F, neg-cosine head, margin -0.05, 8 epochs of the train split)
#   changes to w60 (recipe R3): w60bn --way 60 --freeze-bn-after 0 (BatchNorm statistics never frozen);
#   w60lr --way 60 --lr 0.002; w60sh --way 60 --augment shift (random translations of up to 2 px, edges replicated);
#   w60shlr --way 60 --augment shift --lr 0.002
#   changes to w60shlr (recipe R4): w60shlrbn adds --freeze-bn-after 0; w60shlr3 has --lr 0.003;
#   w60shlrc / w60shlrc1: w60shlr's backbone trained on for half as many episodes again (--init from w60shlr, a
#   second cosine cycle from lr 0.0005 / 0.001, the same flags otherwise; needs w60shlr)
#   w60shlr5w / w60shlr5wl: w60shlr's backbone trained on for 2000 episodes shaped as the 5-way 1-shot test (5-way
#   1-shot 15 queries; --init from w60shlr, a second cosine cycle from lr 0.001 / 0.0003, shifts; needs w60shlr)
#   w60shlrw: w60shlr with blocks 3-4 widened to 128 channels (--widths 64,64,128,128); w60shlrq: w60shlr with 10
#   queries per class in each training episode instead of 5
# LONG=1: each variant also evaluated at 5-way 1-shot on 10000 validation episodes (seed 0; --quick: 20) into
# episodes-long-<variant>/ (printed into <variant>-long.txt) and paired with its base's into paired-long-<variant>.txt,
# and long.md tabulates them: 600 episodes give a variant's 5-way 1-shot accuracy to +- 0.16 points, 10000 to +- 0.04
# (the paired differences to about +- 0.02); list the base first in VARIANTS. Time: 2m15s-2m22s per variant
# on both cores (70.7-74.3 episodes/s), 18m56s for the README table's first 8 variants (measured 2026-12-07, nothing else running).
# Every variant is also paired with a base on the same validation episodes (`mml compare`, A - B with its interval over
# the episodes): R1's changes (w128 k1 aug w60 pre) with base, w60's with w60, w60shlr's with w60shlr, into
# paired-<variant>.txt (PAIRED_BASE=variant overrides the base; the base's evaluation must exist in RUN_DIR).
# Time on this 2-core machine (measured, machine partly shared): 6.5-13 minutes of training per 30-way variant
# (w128 15), w60 19, pre 7.5 after 10 minutes of pre-training; 1-2 minutes of evaluation each; --quick 1m56s.
# w60bn, w60lr, w60sh with THREADS=1 and a training job on the other core: 20-21 minutes each with evaluation.
# Resumable: run it again after a stop; finished variants are skipped.
# Outputs in RUN_DIR: <variant>/ (the run), <variant>-val.txt (the evaluation), screen.md (the table), output.log,
# build.log, took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_args "$@"
OMNIGLOT=${ARGS[0]:-${OMNIGLOT:-../shared/datasets/omniglot}}
PER_EPOCH=500 EPOCHS=4 VAL=600 PRE_EPOCHS=8 PRE_LIMIT=()
if [ "$QUICK" = 1 ]; then
  PER_EPOCH=10 EPOCHS=2 VAL=10 PRE_EPOCHS=1 PRE_LIMIT=(--max-batches 5)
fi
OUT=${ARGS[1]:-${OUT:-runs/omniglot-screen$(mml_quick_suffix)}}
VARIANTS=${VARIANTS:-base w128 k1 aug w60 pre}
unset INIT TRAIN_EPOCHS QUERY  # set for one call of train() only, never from the environment
MML_RESUMABLE=1
mml_begin omniglot-screen "$@"
mml_omniglot
mml_build
mml_omniglot_recipe 30
data=("${OMNIGLOT_DATA[@]}")

# [WAY=W] [QUERY=Q] [INIT=weights] train NAME FLAGS...: R1 shortened (W-way), into OUT/NAME (resumed if stopped, skipped when
# finished); INIT: the backbone to start from (a resumed run continues from its own: mml train refuses --init with
# --resume)
train() {
  local name=$1 dir="$OUT/$1"
  shift
  [ -f "$dir/finished" ] && return 0
  local start=()
  [ -n "${INIT:-}" ] && start=(--init "$INIT")
  [ -f "$dir/last.safetensors" ] && start=(--resume)
  mml_omniglot_recipe "${WAY:-30}" "${QUERY:-5}"
  "$MML" train "${data[@]}" --split train --val-split none "${OMNIGLOT_TRAIN[@]}" --episodes-per-epoch $PER_EPOCH \
      --epochs "${TRAIN_EPOCHS:-$EPOCHS}" --seed 1 --threads "${THREADS:-0}" --out "$dir" "$@" "${start[@]}"
  touch "$dir/finished"
}

for v in $VARIANTS; do
  echo "== variant $v"
  case $v in
    base) train base ;;
    w128) train w128 --widths 64,64,128,128 ;;
    k1) train k1 --pixel-k 1 ;;
    aug) train aug --augment mml ;;
    w60) WAY=60 train w60 ;;
    w60bn) WAY=60 train w60bn --freeze-bn-after 0 ;;
    w60lr) WAY=60 train w60lr --lr 0.002 ;;
    w60sh) WAY=60 train w60sh --augment shift ;;
    w60shlr) WAY=60 train w60shlr --augment shift --lr 0.002 ;;
    w60shlrbn) WAY=60 train w60shlrbn --augment shift --lr 0.002 --freeze-bn-after 0 ;;
    w60shlr3) WAY=60 train w60shlr3 --augment shift --lr 0.003 ;;
    w60shlrc|w60shlrc1)
      [ -f "$OUT/w60shlr/finished" ] || { echo "error: $v continues w60shlr: run VARIANTS=w60shlr first" >&2; exit 1; }
      lr=0.0005
      [ $v = w60shlrc1 ] && lr=0.001
      WAY=60 TRAIN_EPOCHS=$((EPOCHS / 2)) INIT=$OUT/w60shlr/last.safetensors train $v --augment shift --lr $lr ;;
    w60shlrw) WAY=60 train w60shlrw --augment shift --lr 0.002 --widths 64,64,128,128 ;;
    w60shlrq) WAY=60 QUERY=10 train w60shlrq --augment shift --lr 0.002 ;;
    w60shlr5w|w60shlr5wl)
      [ -f "$OUT/w60shlr/finished" ] || { echo "error: $v continues w60shlr: run VARIANTS=w60shlr first" >&2; exit 1; }
      lr=0.001
      [ $v = w60shlr5wl ] && lr=0.0003
      WAY=5 QUERY=15 INIT=$OUT/w60shlr/last.safetensors train $v --augment shift --lr $lr ;;
    pre)
      if [ ! -f "$OUT/pretrain/finished" ]; then
        resume=()
        [ -f "$OUT/pretrain/last.safetensors" ] && resume=(--resume)
        "$MML" pretrain "${data[@]}" --split train --val-split none --backbone conv64f --initialization mml \
            --loss neg-cosine --margin=-0.05 --epochs $PRE_EPOCHS "${PRE_LIMIT[@]}" --log-every 200 \
            --out "$OUT/pretrain" "${resume[@]}"
        touch "$OUT/pretrain/finished"
      fi
      INIT=$OUT/pretrain/backbone.safetensors train pre ;;
    *) echo "error: unknown variant '$v' in VARIANTS (base w128 k1 aug w60 pre w60bn w60lr w60sh w60shlr w60shlrbn w60shlr3 w60shlrc w60shlrc1 w60shlr5w w60shlr5wl w60shlrw w60shlrq)" >&2; exit 1 ;;
  esac
  if [ ! -s "$OUT/$v-val.txt" ] || [ ! -s "$OUT/episodes-$v/episodes.jsonl" ]; then
    "$MML" eval --checkpoint "$OUT/$v/last.safetensors" "${data[@]}" --split val --way 20,5 --shot 1 \
        --episodes $VAL --seed 0 --threads "${THREADS:-0}" --episodes-out "$OUT/episodes-$v/" | tee "$OUT/$v-val.txt.tmp"
    mv "$OUT/$v-val.txt.tmp" "$OUT/$v-val.txt"
  fi
  case $v in
    w60shlr?*) base=w60shlr ;;
    w60?*) base=w60 ;;
    *) base=base ;;
  esac
  base=${PAIRED_BASE:-$base}
  if [ "$base" != "$v" ]; then
    if [ -s "$OUT/episodes-$base/episodes.jsonl" ]; then
      echo "== paired on the same validation episodes: $v - $base ($OUT/paired-$v.txt)"
      "$MML" compare "$OUT/episodes-$v" "$OUT/episodes-$base" | tee "$OUT/paired-$v.txt.tmp"
      mv "$OUT/paired-$v.txt.tmp" "$OUT/paired-$v.txt"
    else
      echo "   (no paired comparison for $v: $OUT/episodes-$base/ is missing; run VARIANTS=$base first)"
    fi
  fi
  if [ "${LONG:-0}" = 1 ]; then
    long=10000
    [ "$QUICK" = 1 ] && long=20
    if [ ! -s "$OUT/$v-long.txt" ] || [ ! -s "$OUT/episodes-long-$v/episodes.jsonl" ]; then
      echo "== $v: 5-way 1-shot on $long validation episodes"
      "$MML" eval --checkpoint "$OUT/$v/last.safetensors" "${data[@]}" --split val --way 5 --shot 1 \
          --episodes $long --seed 0 --threads "${THREADS:-0}" --episodes-out "$OUT/episodes-long-$v/" \
          | tee "$OUT/$v-long.txt.tmp"
      mv "$OUT/$v-long.txt.tmp" "$OUT/$v-long.txt"
    fi
    if [ "$base" != "$v" ] && [ -s "$OUT/episodes-long-$base/episodes.jsonl" ]; then
      "$MML" compare "$OUT/episodes-long-$v" "$OUT/episodes-long-$base" > "$OUT/paired-long-$v.txt.tmp"
      mv "$OUT/paired-long-$v.txt.tmp" "$OUT/paired-long-$v.txt"
    fi
  fi
done
if [ "${LONG:-0}" = 1 ]; then
  # one row per variant: its accuracies on the long episodes and the fused difference to its base (- for a base)
  {
    echo "| variant (5-way 1-shot, long validation episodes) | fused | pixel | part | distribution | fused - base, paired |"
    echo "|---|---|---|---|---|---|"
    for v in $VARIANTS; do
      [ -s "$OUT/$v-long.txt" ] || continue
      d=-
      [ -s "$OUT/paired-long-$v.txt" ] && d=$(awk '/^ +accuracy / { print $8 " +- " $10 }' "$OUT/paired-long-$v.txt")
      awk -v v="$v" -v d="$d" '/-way 1-shot/ { split($0, a, "fused "); f = a[2]; sub(/%.*/, "", f) }
                               /^ +(pixel|part|distribution) / { l[$1] = $2 }
                               END { printf "| %s | %s | %s | %s | %s | %s |\n", v, f, l["pixel"], l["part"], l["distribution"], d }' \
          "$OUT/$v-long.txt"
    done
  } > "$OUT/long.md"
  echo "== 5-way 1-shot on the long validation episodes, paired with each variant's base ($OUT/long.md)"
  cat "$OUT/long.md"
fi

# the table: one row per variant, fused and each level alone at 20-way and 5-way 1-shot
{
  echo "| variant | 20-way 1-shot fused | pixel | part | distribution | 5-way 1-shot fused | pixel | part | distribution |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for v in $VARIANTS; do
    [ -s "$OUT/$v-val.txt" ] || continue
    awk -v v="$v" '/-way 1-shot/ { n++; split($0, a, "fused "); f[n] = a[2]; sub(/%.*/, "", f[n]) }
                   /^ +(pixel|part|distribution) / { l[n, $1] = $2 }
                   END { printf "| %s |", v; for (i = 1; i <= 2; i++) printf " %s | %s | %s | %s |", f[i], l[i, "pixel"], l[i, "part"], l[i, "distribution"]; print "" }' \
        "$OUT/$v-val.txt"
  done
} > "$OUT/screen.md"
echo "== screening on the validation split ($OUT/screen.md)"
cat "$OUT/screen.md"
mml_end
