#!/usr/bin/env bash
# Runs examples/harness.py (the Python package, from python/ with this build's libmmlc.so) when python3 with NumPy
# is available, then examples/torch_harness.py (which says why it skips without PyTorch); otherwise says why it is
# skipped (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null 2>&1; then
  echo "skipped: examples/harness.py (python3 is not installed)"
  exit 0
fi
if ! python3 -c 'import numpy' >/dev/null 2>&1; then
  echo "skipped: examples/harness.py (NumPy is not installed for python3; apt-get install python3-numpy)"
  exit 0
fi
export MML_LIBRARY="${MML_LIBRARY:-$PWD/.build/${CONFIG:-release}/libmmlc.so}"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
python3 examples/harness.py
python3 examples/torch_harness.py
