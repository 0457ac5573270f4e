#!/usr/bin/env bash
# Fuzz mml's .npy and safetensors readers with libFuzzer + AddressSanitizer for a bounded time.
#   scripts/fuzz.sh [seconds-per-target]      (default 60)
# Builds the separate package in Fuzz/ (the root package's build and tests are unaffected), writes a seed corpus
# of valid files, runs each target for the given time and prints libFuzzer's final statistics. A crash leaves its
# input in Fuzz/artifacts/ and makes the script exit non-zero; add it as a regression test and fix the reader.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target]" >&2; exit 2 ;; esac
targets=(mml-fuzz-npy mml-fuzz-safetensors)
flags=(-c debug -Xswiftc -sanitize=fuzzer,address)
for t in "${targets[@]}"; do
  swift build --package-path Fuzz "${flags[@]}" --product "$t"
done
bin="$(swift build --package-path Fuzz "${flags[@]}" --show-bin-path)"
work=Fuzz/.build/corpus
mkdir -p "$work/seed-npy" "$work/seed-safetensors" "$work/mml-fuzz-npy" "$work/mml-fuzz-safetensors" Fuzz/artifacts

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
  start=$(date +%s)
  set +e
  "$bin/$t" "$work/$t" "$seed" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="Fuzz/artifacts/$t-" 2>"$work/$t.log"
  rc=$?
  set -e
  end=$(date +%s)
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:|ERROR|SUMMARY" "$work/$t.log" | tail -6 || true
  echo "$t: ran $((end - start)) s, exit $rc, corpus $(ls "$work/$t" | wc -l) files (log: $work/$t.log)"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
