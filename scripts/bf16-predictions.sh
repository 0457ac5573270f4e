#!/usr/bin/env bash
# Reproduces the README's "bf16 similarity in evaluation" table: one trained Omniglot model evaluated on the same
# 600 test episodes (seed 0, 15 queries) of 5/20-way 1/5-shot twice, `mml eval --precision fp32` and `--precision
# bf16`, each writing its per-episode file (every query's prediction, fused and per level); `mml compare` pairs the
# files episode by episode: the accuracy difference bf16 - fp32 with its paired 95% interval and the queries whose
# prediction changed. The rows are printed as the README's table.
#
#   scripts/bf16-predictions.sh [--quick] [CHECKPOINT]
#   CHECKPOINT: default runs/omniglot-r4/seed-1/last.safetensors (seed 1 of recipe R4, the default of
#               scripts/omniglot-results.sh: `SEED_INDEX=0 scripts/omniglot-results.sh` trains it alone); the README's
#               first table is of R1's seed 1 (runs/omniglot/seed-1/last.safetensors, RECIPE=r1), the AMD table of R4's
#   environment: OUT (default runs/bf16-predictions/<date-time>), QUICK=1 (as --quick), OMNIGLOT (default
#                ../shared/datasets/omniglot), PRECISION (default bf16; bf16amx makes the same table for the AMX
#                summation order, README "bf16 similarity in evaluation")
#
# Time: 34 minutes for the two runs (measured when the table was made: fp32 25m51s, with builds beside it on the
# 2-core machine and the image cache filled on the way, then bf16 7m38s); the episodes/s it prints are not
# benchmarks (the kernel speeds are mml-bench kernels' bf16 rows, README "bf16 similarity in evaluation").
# --quick: a tiny model trained for 20 episodes on the built-in synthetic data, 20 episodes of 5-way 1-shot per
# precision (no Omniglot, no checkpoint needed): checks the pipeline in under a minute; its numbers mean nothing.
# Outputs: OUT/{fp32,bf16}.jsonl (per-episode files), OUT/{fp32,bf16}.json (reports), OUT/compare.{txt,json},
# OUT/rows.md (the table's rows), OUT/took.txt (bf16amx in place of bf16 with PRECISION=bf16amx).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin bf16-predictions "$@"
mml_build
P=${PRECISION:-bf16}
case "$P" in
  bf16|bf16amx) ;;
  *) echo "error: PRECISION=$P: use bf16 or bf16amx" >&2; exit 1 ;;
esac
echo "== $("$MML" env --sgemm-size 0 | grep -E '^(cpu |bf16_similarity|bf16amx_similarity)' | tr -s ' ' | paste -sd ';' -)"
if [ "$QUICK" = 1 ]; then
  DATA=(synthetic --synthetic-size 20 --synthetic-images 12)
  echo "== QUICK: training a tiny model on synthetic data"
  "$MML" train "${DATA[@]}" --widths 8,8,8,8 --way 5 --shot 1 --query 3 --episodes-per-epoch 20 --epochs 1 \
      --episodes-per-step 1 --val-split none --out "$OUT/model" > "$OUT/train.log"
  CKPT=$OUT/model/last.safetensors
  EVAL=(--way 5 --shot 1 --query 5 --episodes 20 --seed 0)
else
  CKPT=${ARGS[0]:-runs/omniglot-r4/seed-1/last.safetensors}
  if [ ! -f "$CKPT" ]; then
    echo "error: no checkpoint $CKPT; train it with SEED_INDEX=0 scripts/omniglot-results.sh (recipe R4, seed 1) or give its path" >&2
    exit 1
  fi
  mml_omniglot
  DATA=("$OMNIGLOT" --layout omniglot-vinyals --split test)
  EVAL=(--way 5,20 --shot 1,5 --episodes 600 --seed 0)
fi
for p in fp32 "$P"; do
  echo "== mml eval --checkpoint $CKPT ${DATA[*]} ${EVAL[*]} --precision $p"
  start=$(date +%s)
  "$MML" eval --checkpoint "$CKPT" "${DATA[@]}" "${EVAL[@]}" --precision "$p" \
      --episodes-out "$OUT/$p.jsonl" --report "$OUT/$p.json"
  echo "   ($p: $(( $(date +%s) - start )) s)"
done
echo "== mml compare $OUT/$P.jsonl $OUT/fp32.jsonl"
"$MML" compare "$OUT/$P.jsonl" "$OUT/fp32.jsonl" | tee "$OUT/compare.txt"
"$MML" compare "$OUT/$P.jsonl" "$OUT/fp32.jsonl" --json > "$OUT/compare.json"
python3 - "$OUT" "$P" <<'EOF' | tee "$OUT/rows.md"
import json, sys
out, P = sys.argv[1], sys.argv[2]
cmp = json.load(open(f"{out}/compare.json"))
speed = {p: {(r["way"], r["shot"]): r["episodes_per_second"] for r in json.load(open(f"{out}/{p}.json"))["results"]}
         for p in ("fp32", P)}
print(f"| setting | fp32 fused | {P} fused | {P} - fp32, paired (points) | fused predictions changed "
      "| pixel level changed | part level changed |")
print("|---|---|---|---|---|---|---|")
total, rates = {}, []
for s in cmp["settings"]:
    m = {x["name"]: x for x in s["measures"]}
    def pct(a): return f"{a['mean'] * 100:.2f} +- {a['ci95'] * 100:.2f}"
    def changed(name):
        x = m[name]
        c, n = x["changedPredictions"], x["comparedPredictions"]
        t = total.setdefault(name, [0, 0]); t[0] += c; t[1] += n
        return f"{c} of {n} ({100 * c / n:.3f}%)"
    d = m["accuracy"]["difference"]
    key = (s["way"], s["shot"])
    print(f"| {s['way']}-way {s['shot']}-shot | {pct(m['accuracy']['b'])} | {pct(m['accuracy']['a'])} "
          f"| {d['mean'] * 100:+.3f} +- {d['ci95'] * 100:.3f} | {changed('accuracy')} | {changed('pixel')} "
          f"| {changed('part')} |")
    rates.append(f"{s['way']}-way {s['shot']}-shot {speed['fp32'][key]:.1f} / {speed[P][key]:.1f}")
print("all settings: " + ", ".join(f"{k} {c} of {n} changed ({100 * c / n:.3f}%)" for k, (c, n) in total.items()))
print(f"episodes/s fp32 / {P} (whole evaluation on whatever else the machine runs; not a benchmark): "
      + "; ".join(rates))
EOF
mml_end
