#!/usr/bin/env bash
# Installs the CPU build of PyTorch into the active Python (a virtual environment: see README.md).
# It comes from PyTorch's CPU index: PyPI's torch is the CUDA build, several GB of CUDA packages
# more. Where that index cannot be reached (an offline machine), pip's own configuration is used
# (a mirror, a local wheel folder) for the same version.
set -euo pipefail
TORCH="torch==2.13.0"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
python -m pip install -q --timeout 15 --retries 1 --index-url "$CPU_INDEX" "$TORCH" 2>/dev/null \
    || python -m pip install -q "$TORCH"
