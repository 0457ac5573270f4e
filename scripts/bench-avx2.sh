#!/usr/bin/env bash
# What the AVX2 + FMA kernel paths bring on a CPU without AVX-512 (README "CPUs without AVX-512"): episodic training
# of the three-level model in the two settings of ../shared/peers/train_throughput.sh (20-way 1-shot 15 queries at
# 28 x 28 on Omniglot's Vinyals train split; 5-way 1-shot at 84 x 84), each round running `mml train` on the
# portable C paths (MML_KERNELS_ISA=portable, what such a CPU ran before the AVX2 paths), then on the dispatched
# paths (AVX2 there; AVX-512 on a CPU that has it), then the tuned PyTorch peer; medians over the rounds and the
# ratios. Before it `mml-bench peak` (the fp32 FMA ceiling of the dispatched path) and after it `mml-bench kernels
# --quick` (its pixel-level rows include the portable C path beside the dispatched one).
#
#   scripts/bench-avx2.sh [--quick]
#   environment: ROUNDS (3), EPISODES28 (40), EPISODES84 (12), OUT (default runs/bench-avx2/<date-time>),
#                TORCH_PY (as the other benchmark scripts), QUICK=1 (1 round of 4 + 2 episodes: a smoke run),
#                TABLE_ONLY=1 with OUT= an earlier run: only the table again, from that run's logs
#
# Time: 13m11s on a 2-core AMD EPYC (Zen 3, AVX2, no AVX-512) on 2026-12-07, nothing else running (measured).
# Outputs: OUT/peak.txt, OUT/train-<size>-<path>-<round>.log (each run's output), OUT/train.md (the table),
# OUT/kernels.txt, OUT/output.log, OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if [ "${TABLE_ONLY:-0}" = 1 ]; then MML_RESUMABLE=1; fi
mml_begin bench-avx2 "$@"
ROUNDS=${ROUNDS:-3} E28=${EPISODES28:-40} E84=${EPISODES84:-12}
if [ "$QUICK" = 1 ]; then ROUNDS=1 E28=4 E84=2; fi
if [ "${TABLE_ONLY:-0}" != 1 ]; then
  mml_build
  mml_omniglot
  mml_torch_peer
  mml_idle_check
  echo "== mml-bench peak"
  "$MML_BENCH" peak | tee "$OUT/peak.txt"
fi
dispatched=$(env -u MML_KERNELS_ISA "$MML" env --sgemm-size 0 2>/dev/null | awk '$1 == "mml_kernels" {print $2}')
echo "dispatched kernel path: ${dispatched:-unknown}"
common=(--layout omniglot-vinyals --query 15 --shot 1 --episodes-per-step 1 --val-split none --pixel-k 3
        --log-every 1000000 --threads 0)
# episodes/s of a run: mml prints "trained N episodes in Ts (R episodes/s)" with R to 2 decimals (T in whole
# seconds), the peer "trained N episodes in T s (R episodes/s)" with T to 0.1 s (R to 1 decimal): N / T for the peer
rate() {
  local peer
  peer=$(grep -Eo 'trained [0-9]+ episodes in [0-9.]+ s ' "$1" | tail -n 1 | awk '{printf "%.3f", $2 / $5}')
  if [ -n "$peer" ]; then echo "$peer"; else
    grep -Eo '\(([0-9.]+) episodes/s\)' "$1" | tail -n 1 | tr -d '()' | awk '{print $1}'; fi
}
{
  d=$dispatched
  echo "| setting | portable C (episodes/s) | $d | PyTorch peer | $d / portable | $d / peer |"
  echo "|---|---|---|---|---|---|"
} >"$OUT/train.md"
for setting in "28 20 $E28" "84 5 $E84"; do
  read -r size way n <<<"$setting"
  port=() disp=() peer=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ "${TABLE_ONLY:-0}" = 1 ]; then
      port+=("$(rate "$OUT/train-$size-portable-$r.log")")
      disp+=("$(rate "$OUT/train-$size-dispatched-$r.log")")
      peer+=("$(rate "$OUT/train-$size-peer-$r.log")")
      continue
    fi
    for path in portable dispatched; do
      log="$OUT/train-$size-$path-$r.log"
      echo "== round $r: mml train, $way-way 1-shot 15 queries, ${size} x ${size}, $n episodes, $path"
      if [ "$path" = portable ]; then
        MML_KERNELS_ISA=portable "$MML" train "$OMNIGLOT" "${common[@]}" --image-size "$size" --way "$way" \
            --episodes-per-epoch "$n" --epochs 1 --out "$OUT/run-$size-$path-$r" >"$log" 2>&1
        port+=("$(rate "$log")")
      else
        env -u MML_KERNELS_ISA "$MML" train "$OMNIGLOT" "${common[@]}" --image-size "$size" --way "$way" \
            --episodes-per-epoch "$n" --epochs 1 --out "$OUT/run-$size-$path-$r" >"$log" 2>&1
        disp+=("$(rate "$log")")
      fi
      grep -E '^trained' "$log" || tail -n 5 "$log"
    done
    log="$OUT/train-$size-peer-$r.log"
    echo "== round $r: PyTorch peer, the same setting"
    SIZE=$size TORCH_PY=$TORCH_PY ../shared/peers/train_throughput.sh "$n" --train-way "$way" | tee "$log"
    peer+=("$(rate "$log")")
  done
  python3 - "$size" "$way" "$dispatched" "${port[*]}" "${disp[*]}" "${peer[*]}" >>"$OUT/train.md" <<'PY'
import statistics, sys
size, way, name = sys.argv[1], sys.argv[2], sys.argv[3]
port, disp, peer = ([float(x) for x in a.split()] for a in sys.argv[4:7])
mp, md, mq = statistics.median(port), statistics.median(disp), statistics.median(peer)
def rounds(v): return "/".join(f"{x:.2f}" for x in v)
print(f"| {way}-way 1-shot {size} px | {mp:.2f} ({rounds(port)}) | {md:.2f} ({rounds(disp)})"
      f" | {mq:.2f} ({rounds(peer)}) | {md / mp:.2f}x | {md / mq:.2f}x |")
PY
done
echo "== episodic training, medians over $ROUNDS rounds ($OUT/train.md)"
cat "$OUT/train.md"
if [ "${TABLE_ONLY:-0}" = 1 ]; then exit 0; fi
echo "== mml-bench kernels --quick"
"$MML_BENCH" kernels --quick | tee "$OUT/kernels.txt"
mml_end
