#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine: the system packages
# (scripts/apt-packages.txt), a virtual environment in .venv (Debian's own python3 refuses pip
# installs), the CPU build of PyTorch (scripts/install_torch.sh), the offline TTS engines
# (scripts/install_tts.sh), then the package, editable, with its dev extra (which holds every
# other extra but cuda and peers). Run the tests with .venv/bin/python -m pytest -q.
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

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate

bash scripts/install_torch.sh
bash scripts/install_tts.sh
# compat: the repository goes on sys.path, so a folder named streamssm holding the clone (no
# __init__.py) cannot hide the package when Python runs beside it
python -m pip install -q -e ".[dev]" --config-settings editable_mode=compat
