# Shared by the scripts that reproduce the README's figures (source it; not run on its own).
#
#   mml_begin NAME "$@"   cd to the repository, read --quick (or QUICK=1) into QUICK, the other arguments into
#                         ARGS, make the output directory OUT (default runs/NAME/<date-time>[-quick]; nothing earlier
#                         is overwritten), copy everything printed into OUT/output.log and start the clock
#   mml_args "$@"         only the first part (cd, QUICK, ARGS): for a script whose OUT comes from its arguments,
#                         which sets OUT and then calls mml_begin
#   mml_quick_suffix      prints -quick in a --quick run (else nothing): for a script's default OUT, so that a check
#                         never resumes or overwrites a real run
#   MML_RESUMABLE=1       set before mml_begin: OUT may hold an earlier, stopped run of this script, which the script
#                         continues (output.log is appended to)
#   mml_build             the Debian packages (scripts/install-deps.sh) and `swift build -c release` (log in OUT)
#   mml_torch_peer        the PyTorch peer of ../shared/peers/README.md: TORCH_PY (default /tmp/torchpeer/bin/python),
#                         created from /opt/wheels/torch-2.13.0+cpu-*.whl when missing; tcmalloc for its tuned
#                         configuration (apt-get as root, else the command to run is printed)
#   mml_omniglot          OMNIGLOT (default ../shared/datasets/omniglot), checked
#   mml_omniglot_recipe WAY [QUERY]
#                         the Omniglot recipes' shared flags (README "Results: Omniglot"): OMNIGLOT_DATA (the data and
#                         the standard preprocessing: ink as 1, area resize) and OMNIGLOT_TRAIN (WAY-way 1-shot QUERY
#                         (default 5) queries, one episode per Adam step, cosine schedule, pixel K = 3, checkpoints and
#                         logs); R1 is WAY 30, R3 WAY 60
#   mml_idle_check        notes the load average: the figures were measured on an idle machine
#   mml_rounds N STEM KIND MD TITLE FN [ARGS...]
#                         rounds of a measurement summarised as one table: for R = 1..N, `FN ARGS... R N JSON` with
#                         JSON = OUT/STEM<R>.json (FN says what it runs, writes JSON and keeps its own log beside
#                         it); then `scripts/summarize.py KIND` over the N files into OUT/MD, printed under
#                         "== TITLE (OUT/MD)"
#   mml_end               prints "took XmYs" and writes it to OUT/took.txt
# shellcheck shell=bash

MML=.build/release/mml
MML_BENCH=.build/release/mml-bench
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4

mml_args() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  QUICK=${QUICK:-0}
  ARGS=()
  local a
  for a in "$@"; do
    if [ "$a" = --quick ]; then QUICK=1; else ARGS+=("$a"); fi
  done
}

# -quick for a --quick run, else nothing: the suffix of a default output directory, so that a check never resumes
# or overwrites a real run
mml_quick_suffix() {
  if [ "$QUICK" = 1 ]; then echo -quick; fi
}

mml_begin() {
  MML_NAME=$1
  shift
  mml_args "$@"
  OUT=${OUT:-runs/$MML_NAME/$(date +%Y%m%d-%H%M%S)$(mml_quick_suffix)}
  if [ "${MML_RESUMABLE:-0}" != 1 ] && [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    echo "error: $OUT already holds files; give another OUT=DIR (nothing is overwritten)" >&2
    exit 1
  fi
  mkdir -p "$OUT"
  MML_T0=$(date +%s)
  # tee -i: Ctrl-C stops the commands cleanly (mml finishes its step and says how to resume); tee must outlive
  # them to copy those last lines, and a tee killed by the SIGINT would kill mml with SIGPIPE before it saves
  exec > >(tee -i -a "$OUT/output.log") 2>&1
  echo "== $MML_NAME$([ "$QUICK" = 1 ] && echo ' (QUICK: tiny sizes, checks the pipeline, not a measurement)')"
  echo "   outputs in $OUT; $(date -u '+%Y-%m-%d %H:%M UTC'); git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
}

mml_build() {
  scripts/install-deps.sh
  echo "== swift build -c release (log: $OUT/build.log)"
  if ! swift build -c release >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log"
    echo "error: swift build -c release failed (whole log: $OUT/build.log)" >&2
    exit 1
  fi
}

mml_torch_peer() {
  TORCH_PY=${TORCH_PY:-/tmp/torchpeer/bin/python}
  if [ ! -x "$TORCH_PY" ]; then
    local venv wheel
    venv=$(dirname "$(dirname "$TORCH_PY")")
    wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
      echo "error: no PyTorch peer at $TORCH_PY and no CPU wheel /opt/wheels/torch-2.13.0+cpu-*.whl to make one;" \
           "set it up as ../shared/peers/README.md says, or set TORCH_PY to a python with torch" >&2
      exit 1
    fi
    echo "== creating the PyTorch peer venv $venv from $wheel"
    if ! python3 -c 'import ensurepip' 2>/dev/null && [ "$(id -u)" -eq 0 ]; then
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    fi
    python3 -m venv "$venv" || {
      echo "error: python3 -m venv failed; install python3-venv (apt-get install -y python3-venv) and try again" >&2
      exit 1
    }
    "$venv/bin/pip" install -q "$wheel" numpy
  fi
  if [ ! -e "$TCMALLOC" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "== installing libtcmalloc-minimal4 (the peer's tuned configuration preloads it)"
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libtcmalloc-minimal4
    else
      echo "warning: $TCMALLOC is missing, so the PyTorch peer runs untuned (not the README's configuration);" \
           "run:  sudo apt-get install -y libtcmalloc-minimal4" >&2
    fi
  fi
}

mml_omniglot() {
  OMNIGLOT=${OMNIGLOT:-../shared/datasets/omniglot}
  if [ ! -d "$OMNIGLOT/images_evaluation" ] && [ ! -d "$OMNIGLOT/images_background" ]; then
    echo "error: no Omniglot at $OMNIGLOT (Lake's layout with the Vinyals split files);" \
         "set OMNIGLOT=/path/to/omniglot" >&2
    exit 1
  fi
}

mml_omniglot_recipe() {
  OMNIGLOT_DATA=("$OMNIGLOT" --layout omniglot-vinyals --ink ink-one --resize-filter area)
  OMNIGLOT_TRAIN=(--way "$1" --shot 1 --query "${2:-5}" --episodes-per-step 1 --schedule cosine --pixel-k 3
                  --checkpoint-every 500 --log-every 250)
}

mml_idle_check() {
  local load
  load=$(cut -d ' ' -f 1 /proc/loadavg)
  echo "   load average $load (the README's figures were measured on an idle machine)"
  if [ "$QUICK" != 1 ] && awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "warning: the machine is busy (load $load): timings will not be comparable with the README's" >&2
  fi
}

mml_rounds() {
  local n=$1 stem=$2 kind=$3 md=$4 title=$5 fn=$6 r files=()
  shift 6
  for r in $(seq 1 "$n"); do
    "$fn" "$@" "$r" "$n" "$OUT/$stem$r.json"
    files+=("$OUT/$stem$r.json")
  done
  scripts/summarize.py "$kind" "${files[@]}" > "$OUT/$md"
  echo "== $title ($OUT/$md)"
  cat "$OUT/$md"
}

mml_end() {
  local s=$(( $(date +%s) - MML_T0 ))
  echo "took $((s / 60))m$((s % 60))s" | tee "$OUT/took.txt"
}
