#!/usr/bin/env bash
# Train the asr model on a lent GPU machine (no network, 16 cores, minutes at a time) from a
# carried training pack, and bring the trained model back. RECIPE (the second word, default
# continue) is one of
#   continue   configs/asr_gpu.json: the shipped model trained on (init_from models/asr)
#   transfer   configs/asr_gpu_transfer_align.json then configs/asr_gpu_transfer.json: a student of
#              Whisper tiny.en's shape made from the teacher's encoder (carried as .gpu/whisper-tiny.en.npz),
#              aligned layer by layer, then trained with CTC + transducer + alignment
#
#   bash scripts/gpu_train.sh --prepare [RECIPE]   # here: the pack (.gpu/pack), teacher file, wheels (.whl/)
#   bash scripts/gpu_train.sh run [RECIPE]         # there: device run(command=..., carry=[".gpu", ".whl"], timeout_s=560)
#   bash scripts/gpu_train.sh --receive DIR        # here: DIR (the run's files) -> data/models/asr_gpu
#   bash scripts/gpu_train.sh --dry-run [RECIPE]   # here, on the CPU: every step with a tiny pack and 2 steps
#
# There: installs the carried wheels, trains (each config's time_limit_s ends it in time with its
# learning-rate schedule complete), and writes to $OUT the model folder with its training logs and
# compute records as a tar split into parts (one file may be at most 16 MiB there) plus train.txt.
# --receive joins and unpacks them. The pack holds the train parts of the real recordings and the
# committed pseudo-labels (models/asr/training/labels) at 14 kbit/s Opus: everything that travels
# must stay under 64 MiB, the repository included, so --prepare packs in turn from every source
# until the room left by the repository, the wheels and the teacher file is used, and prints the total.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
recipe=${2:-continue}
OUT=${OUT:-/tmp/streamssm-gpu-train}
SOURCES="speechocean762 ljs-reread vctk-p239 commonvoice-extra models/asr/training/labels/librispeech-tc100.jsonl
         models/asr/training/labels/speechocean762-untranscribed.jsonl"
NOISE=../shared/data/noise
TEACHER=.gpu/whisper-tiny.en.npz
LIMIT_MIB=64
MARGIN_MIB=2  # manifests, the model folder's growth, git's own files
LEAST_PACK_MIB=6  # below this (about an hour of speech with the noise) a run is not worth a lent machine
case "$recipe" in
continue) CONFIGS=(configs/asr_gpu.json) ;;
transfer) CONFIGS=(configs/asr_gpu_transfer_align.json configs/asr_gpu_transfer.json) ;;
*)
    echo "unknown recipe $recipe (continue or transfer); see the comment at the top of $0" >&2
    exit 2
    ;;
esac
PY=python3  # there: the image's Python with CUDA PyTorch; here: the project's .venv
[ "$mode" != run ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
source scripts/device_wheels.sh

config_value() {  # config_value CONFIG KEY [--set ...]: a setting of a config, as the trainer reads it
    $PY -c "import sys; from streamssm.train.asr import ASRTrainConfig
config = ASRTrainConfig.from_file(sys.argv[1])
for item in sys.argv[3:]:
    key, value = item.split('=', 1); setattr(config, key, __import__('json').loads(value))
print(getattr(config, sys.argv[2]))" "$@"
}

train_all() {  # train_all [--set KEY=VALUE ...]: each config of the recipe in turn, the same settings added
    local sets=() config
    for item in "$@"; do sets+=(--set "$item"); done
    for config in "${CONFIGS[@]}"; do
        TQDM_DISABLE=1 $PY -m streamssm.train asr --config "$config" "${sets[@]}"
    done
}

send_back() {  # the last model folder + each run's training log and compute record -> $OUT as <= 15 MiB parts
    local model_dir train_dir config prefix=""
    model_dir=$(config_value "${CONFIGS[-1]}" model_dir "$@")
    mkdir -p "$OUT"
    for config in "${CONFIGS[@]}"; do
        train_dir=$(config_value "$config" out_dir "$@")
        [ "$config" = "${CONFIGS[-1]}" ] && prefix="" || prefix="$(basename "$train_dir")_"
        cp "$train_dir/log.jsonl" "$model_dir/${prefix}log.jsonl"
        cp "$train_dir/compute.json" "$model_dir/${prefix}compute.json"
    done
    tar -cf - -C "$model_dir" . | split -b 15M -d - "$OUT/model.tar."
    ls -l "$OUT"
}

receive() {  # files of send_back -> data/models/asr_gpu
    local from=$1 to=data/models/asr_gpu
    rm -rf "$to" && mkdir -p "$to"
    cat "$from"/model.tar.* | tar -xf - -C "$to"
    echo "model -> $to"
}

tracked_mib() {
    git ls-files -z | xargs -0 du -cb | tail -1 | awk '{print $1 / 1048576}'
}

case "$mode" in
--prepare)
    ls .whl/*.whl >/dev/null 2>&1 || fetch_device_wheels
    [ "$recipe" = transfer ] && $PY -m streamssm.distill encoder-tensors "$TEACHER"
    room=$(awk -v t="$(tracked_mib)" -v c="$(du -sb .whl .gpu 2>/dev/null | awk '{s += $1} END {print s / 1048576}')" \
        -v limit=$LIMIT_MIB -v margin=$MARGIN_MIB 'BEGIN {print limit - margin - t - c}')
    if awk -v room="$room" -v least=$LEAST_PACK_MIB 'BEGIN {exit !(room < least)}'; then
        echo "error: only $room MiB of the $LIMIT_MIB MiB are left for the pack (at least $LEAST_PACK_MIB needed):" \
            "the repository, .whl/ and .gpu/ take the rest" >&2
        exit 1
    fi
    $PY -m streamssm.data pack $SOURCES --noise "$NOISE" --out .gpu/pack --max-mib "$room"
    echo "travels: $(tracked_mib) MiB tracked + $(du -sm .gpu .whl | awk '{s += $1} END {print s}') MiB carried (limit $LIMIT_MIB)"
    ;;
--receive)
    receive "${2:?--receive needs the folder of the files the run sent back}"
    ;;
--dry-run)
    device_pythonpath
    work=$(mktemp -d)
    $PY -m streamssm.data pack speechocean762 ljs-reread --limit 6 --noise "$NOISE" --out "$work/pack"
    if [ "$recipe" = transfer ] && [ ! -f "$TEACHER" ]; then
        $PY -m streamssm.distill encoder-tensors "$TEACHER"
    fi
    sets=(steps=2 max_seconds=30 loader_workers=0 "manifests=[\"$work/pack/manifest.jsonl\"]"
        "noise_dir=\"$work/pack/noise\"")
    for config in "${CONFIGS[@]}"; do  # the runs' own folders, so that nothing resumes an earlier run
        rm -rf "$(config_value "$config" out_dir)" "$(config_value "$config" model_dir)"
    done
    OUT=$work/out
    train_all "${sets[@]}"
    send_back "${sets[@]}"
    receive "$OUT"
    $PY -c "from streamssm.models import load_model; m = load_model('data/models/asr_gpu')
print('received model:', type(m).__name__, 'encoder stem', m.config.encoder.stem, sorted(p.name for p in __import__('pathlib').Path('data/models/asr_gpu').iterdir()))"
    rm -rf "$work"
    ;;
run)
    install_device_wheels
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/train.txt" || true
    train_all 2>&1 | tee -a "$OUT/train.txt"
    send_back
    ;;
*)
    echo "unknown mode $mode; see the comment at the top of $0" >&2
    exit 2
    ;;
esac
