#!/usr/bin/env bash
# Fuzz every parser of outside input with libFuzzer + AddressSanitizer for a bounded time: .npy, safetensors,
# PNG and JPEG decoding, CSV splits, episode lists and checkpoint metadata.
#   scripts/fuzz.sh [seconds-per-target] [target...]      (default 60 s; all targets, e.g. mml-fuzz-png)
# Builds the separate package in Fuzz/ (the root package's build and tests are unaffected), writes a seed corpus
# of valid files, runs each target for the given time and prints libFuzzer's final statistics. A crash leaves its
# input in Fuzz/artifacts/ and makes the script exit non-zero; add it as a regression test and fix the reader.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2; exit 2 ;; esac
shift || true
all=(mml-fuzz-npy mml-fuzz-safetensors mml-fuzz-png mml-fuzz-jpeg mml-fuzz-csv mml-fuzz-episodes mml-fuzz-checkpoint)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
# The C of MMLImageIO and MMLKernels is instrumented too (ASan + coverage); the system libpng and libjpeg are not.
flags=(-c debug -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)
for t in "${targets[@]}" mml-fuzz-seeds; do
  swift build --package-path Fuzz "${flags[@]}" --product "$t"
done
bin="$(swift build --package-path Fuzz "${flags[@]}" --show-bin-path)"
work=Fuzz/.build/corpus
mkdir -p "$work/seed-npy" "$work/seed-safetensors" Fuzz/artifacts
for t in "${targets[@]}"; do mkdir -p "$work/$t"; done
# Seeds of the image, CSV, episode-list and checkpoint targets, written by MMLCore's own encoders.
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$bin/mml-fuzz-seeds" "$work"

# Seeds: the committed .npy fixtures, NumPy-written arrays when NumPy is there, and hand-made safetensors files.
cp Tests/MMLCoreTests/Fixtures/npy/*.npy "$work/seed-npy/"
if python3 -c 'import numpy' 2>/dev/null; then
  python3 - "$work/seed-npy" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
np.save(f"{d}/np_f4_4d.npy", rng.standard_normal((2, 3, 2, 2)).astype(np.float32))
np.save(f"{d}/np_f8_nmc.npy", rng.standard_normal((2, 4, 3)))
np.save(f"{d}/np_i4.npy", np.arange(5, dtype=np.int32))
np.save(f"{d}/np_i8_empty.npy", np.zeros((0, 3), dtype=np.int64))
PY
fi
le64() { local n=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (n >> (8 * i)) & 255 )))"; done; }
st() {  # st FILE HEADER-JSON DATA-BYTE-COUNT
  { le64 "${#2}"; printf '%s' "$2"; head -c "$3" /dev/zero | tr '\0' '\1'; } > "$1"
}
st "$work/seed-safetensors/one.safetensors" '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8
st "$work/seed-safetensors/meta.safetensors" \
  '{"__metadata__":{"mml.format":"mml-checkpoint/1"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}}' 24
st "$work/seed-safetensors/empty.safetensors" '{}' 0

# Let libFuzzer report crashes itself (the Swift runtime's backtracer gets in the way of AddressSanitizer).
export SWIFT_BACKTRACE=enable=no
status=0
for t in "${targets[@]}"; do
  seed="$work/seed-${t#mml-fuzz-}"
  echo "== $t for ${secs} s"
  maxlen=4096
  case "$t" in mml-fuzz-png|mml-fuzz-jpeg) maxlen=16384 ;; esac
  start=$(date +%s)
  set +e
  "$bin/$t" "$work/$t" "$seed" -max_total_time="$secs" -max_len="$maxlen" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="Fuzz/artifacts/$t-" 2>"$work/$t.log"
  rc=$?
  set -e
  end=$(date +%s)
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:|ERROR|SUMMARY" "$work/$t.log" | tail -6 || true
  echo "$t: ran $((end - start)) s, exit $rc, corpus $(ls "$work/$t" | wc -l) files (log: $work/$t.log)"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
