#!/usr/bin/env bash
# Train the asr model on a lent GPU machine (no network, 16 cores, minutes at a time) from a
# carried training pack, and bring the trained model back.
#
#   bash scripts/gpu_train.sh --prepare        # here: the pack (.gpu/pack) and the wheels (.whl/)
#   bash scripts/gpu_train.sh                  # there: device run(command=..., carry=[".gpu", ".whl"], timeout_s=560)
#   bash scripts/gpu_train.sh --receive DIR    # here: DIR (the run's files) -> data/models/asr_gpu
#   bash scripts/gpu_train.sh --dry-run        # here, on the CPU: every step with a tiny pack and 2 steps
#
# There: installs the carried wheels, trains `python -m streamssm.train asr --config configs/asr_gpu.json`
# (init_from models/asr; time_limit_s ends it in time with its learning-rate schedule complete), and
# writes to $OUT the model folder with its training log and compute record as a tar split into
# parts (one file may be at most 16 MiB there) plus train.txt. --receive joins and unpacks them.
# The pack holds the train parts of the real recordings and the committed pseudo-labels
# (models/asr/training/labels) at 14 kbit/s Opus: everything that travels must stay under 64 MiB,
# the repository included; --prepare prints the total.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
OUT=${OUT:-/tmp/streamssm-gpu-train}
SOURCES="speechocean762 ljs-reread vctk-p239 commonvoice-extra models/asr/training/labels/librispeech-tc100.jsonl
         models/asr/training/labels/speechocean762-untranscribed.jsonl"
NOISE=../shared/data/noise
CONFIG=configs/asr_gpu.json
PY=python3  # there: the image's Python with CUDA PyTorch; here: the project's .venv
[ "$mode" != run ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
source scripts/device_wheels.sh

send_back() {  # the model folder + training log and compute record -> $OUT as <= 15 MiB parts
    local train_dir=$1 model_dir=$2
    mkdir -p "$OUT"
    cp "$train_dir/log.jsonl" "$train_dir/compute.json" "$model_dir/"
    tar -cf - -C "$model_dir" . | split -b 15M -d - "$OUT/model.tar."
    ls -l "$OUT"
}

receive() {  # files of send_back -> data/models/asr_gpu
    local from=$1 to=data/models/asr_gpu
    rm -rf "$to" && mkdir -p "$to"
    cat "$from"/model.tar.* | tar -xf - -C "$to"
    echo "model -> $to"
}

case "$mode" in
--prepare)
    $PY -m streamssm.data pack $SOURCES --noise "$NOISE" --out .gpu/pack
    ls .whl/*.whl >/dev/null 2>&1 || fetch_device_wheels
    echo "travels: $(($(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) / 1048576)) MiB tracked +" \
        "$(du -sm .gpu .whl | awk '{s += $1} END {print s}') MiB carried (limit 64)"
    ;;
--receive)
    receive "${2:?--receive needs the folder of the files the run sent back}"
    ;;
--dry-run)
    device_pythonpath
    work=$(mktemp -d)
    $PY -m streamssm.data pack speechocean762 ljs-reread --limit 6 --noise "$NOISE" --out "$work/pack"
    OUT=$work/out
    $PY -m streamssm.train asr --config "$CONFIG" --set steps=2 --set max_seconds=30 --set loader_workers=0 \
        --set manifests="[\"$work/pack/manifest.jsonl\"]" --set noise_dir="\"$work/pack/noise\"" \
        --set out_dir="\"$work/train\"" --set model_dir="\"$work/model\""
    send_back "$work/train" "$work/model"
    receive "$OUT"
    $PY -c "from streamssm.models import load_model; print('received model:', type(load_model('data/models/asr_gpu')).__name__)"
    rm -rf "$work"
    ;;
run)
    install_device_wheels
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/train.txt" || true
    TQDM_DISABLE=1 python3 -m streamssm.train asr --config "$CONFIG" 2>&1 | tee -a "$OUT/train.txt"
    send_back data/train/asr_gpu data/models/asr_gpu
    ;;
*)
    echo "unknown mode $mode; see the comment at the top of $0" >&2
    exit 2
    ;;
esac
