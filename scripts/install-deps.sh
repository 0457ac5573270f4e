#!/usr/bin/env bash
# Install the Debian packages mml needs, when missing. As root it runs apt-get; otherwise it prints the
# exact command to run and fails.
set -euo pipefail
pkgs=(libopenblas-dev liblapacke-dev libjpeg62-turbo-dev libpng-dev pkg-config python3-numpy python3-pytest
      libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
  echo "mml needs these Debian packages: ${missing[*]}" >&2
  echo "run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "the Swift toolchain (swift) is not on PATH: install Swift 6 from swift.org and try again" >&2
  exit 1
fi
