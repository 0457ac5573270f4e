#!/usr/bin/env bash
# Where the episodic training time goes (`mml train --profile`), for the two settings of the training-speed work:
# the three-level model (pixel top-3, region parts Grid-3,2, KL, learned fusion; Conv-64F) on Omniglot's Vinyals
# train split at 20-way 1-shot 15 queries 28 x 28, and at 5-way 1-shot 84 x 84 (21 x 21 maps) - the settings of
# ../shared/peers/train_throughput.sh, whose PyTorch peer it can run right after (PEER=1) for the episodes/s ratio.
#
#   scripts/profile-training.sh [--quick]
#   environment: OUT (default runs/profile-training/<date-time>), EPISODES28 (150), EPISODES84 (50), PEER=1 to run
#                the peer after each setting (needs the torch venv: created like the benchmark scripts do), QUICK=1
#
# Time: about 2-3 minutes without the peer (150 + 50 episodes, the image cache filled first), 5 with it.
# Needs an idle machine for timings; the shares of the phases are what the profile is for.
# Outputs: OUT/profile-28.json, OUT/profile-84.json (mml's profile.json), OUT/output.log, OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin profile-training "$@"
mml_build
mml_omniglot
mml_idle_check
E28=${EPISODES28:-150} E84=${EPISODES84:-50}
if [ "$QUICK" = 1 ]; then E28=6 E84=4; fi
if [ "${PEER:-0}" = 1 ]; then mml_torch_peer; fi
common=(--layout omniglot-vinyals --query 15 --shot 1 --episodes-per-step 1 --val-split none --pixel-k 3
        --log-every 1000000 --profile)
for setting in "28 20 $E28" "84 5 $E84"; do
  read -r size way n <<<"$setting"
  echo "== mml train, $way-way 1-shot 15 queries, ${size} x ${size}, $n episodes"
  "$MML" train "$OMNIGLOT" "${common[@]}" --image-size "$size" --way "$way" --episodes-per-epoch "$n" --epochs 1 \
      --out "$OUT/run-$size"
  cp "$OUT/run-$size/profile.json" "$OUT/profile-$size.json"
  if [ "${PEER:-0}" = 1 ]; then
    echo "== PyTorch peer, the same setting"
    SIZE=$size TORCH_PY=$TORCH_PY ../shared/peers/train_throughput.sh "$n" --train-way "$way"
  fi
done
mml_end
