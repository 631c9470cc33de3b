#!/usr/bin/env bash
# The CUDA checks and the batched-streams table, as one script for a lent GPU machine.
#
#   bash benchmarks/gpu.sh --fetch     # here, once (network): wheels the GPU image lacks, into .whl/
#   bash benchmarks/gpu.sh             # there: device run, carry [".whl"], results under $OUT
#   bash benchmarks/gpu.sh --dry-run   # on a CPU machine: the same steps on the CPU, small sizes
#
# There: installs the carried wheels (soundfile, soxr; mamba-ssm and causal-conv1d when wheels
# for the device's CUDA and torch were carried, else the PyTorch path runs), writes nvidia-smi and
# the kernels' availability, runs the CUDA tests (kernel path == PyTorch path, transducer loss on
# CUDA) and benchmarks/gpu_streams.py (bf16 weights, float32 states, CUDA graphs of the step).
# Results: $OUT/{environment.txt, cuda_tests.txt, gpu_streams.md, gpu_streams.json}.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
OUT=${OUT:-/tmp/streamssm-gpu}
mkdir -p "$OUT"

source scripts/device_wheels.sh

if [ "$mode" = --fetch ]; then
    fetch_device_wheels
    exit 0
fi

if [ "$mode" = --dry-run ]; then
    device=cpu dtype=fp32 max_streams=4
    device_pythonpath
else
    device=cuda dtype=bf16 max_streams=65536
    install_device_wheels || { echo "wheel install failed" | tee "$OUT/environment.txt"; exit 1; }
fi

{
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    python3 - <<'EOF'
import torch
from streamssm.nn.ssm import cuda_kernels
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("mamba-ssm / causal-conv1d kernels:", "yes" if cuda_kernels() else "no (PyTorch path)")
EOF
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# CUDA tests: they skip themselves without CUDA (the dry run still checks that they collect).
python3 -m pytest -q -rs tests/test_ssm.py tests/test_asr_transducer.py -k "kernel or cuda" -p no:cacheprovider \
    2>&1 | tee "$OUT/cuda_tests.txt"

python3 benchmarks/gpu_streams.py --out "$OUT" --device "$device" --dtype "$dtype" --max-streams "$max_streams" \
    2>&1 | tail -40
ls -l "$OUT"
