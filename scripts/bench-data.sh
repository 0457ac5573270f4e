#!/usr/bin/env bash
# Reproduces the README's Benchmarks "Data" table: `mml-bench data` (Omniglot PNG decode + resize to 28 and 84, one
# thread and both cores; generated 84 x 84 JPEGs; cached images to normalised tensors; 600 Omniglot Vinyals test
# episodes cold and cached; synthetic generation), 2000 images and the median of 3 repeats per row.
#
#   scripts/bench-data.sh [--quick]
#   environment: OUT (default runs/bench-data/<date-time>), QUICK=1 (as --quick). The Omniglot rows read
#                ../shared/datasets/omniglot beside the repository (mml-bench looks there) and are skipped without it.
#
# Time: not recorded when the table was made; an estimate (not measured) from the --quick run scaled by its sizes
# (10x the images and 3 repeats instead of 1; the 600 Omniglot episodes, 3 s of the quick run, do not grow) is
# under a minute. Needs an idle machine.
# --quick: 200 images, one repeat: 6 s on a busy machine; not a measurement.
# Outputs: OUT/data.txt (the table's rows), OUT/took.txt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mml_begin bench-data "$@"
mml_build
mml_idle_check
if [ ! -d ../shared/datasets/omniglot ]; then
  echo "note: no ../shared/datasets/omniglot beside the repository: the Omniglot rows are skipped"
fi
FLAGS=()
if [ "$QUICK" = 1 ]; then FLAGS=(--quick); fi
echo "== mml-bench data ${FLAGS[*]}"
"$MML_BENCH" data "${FLAGS[@]}" | tee "$OUT/data.txt"
echo "the rows of the Data table: $OUT/data.txt"
mml_end
