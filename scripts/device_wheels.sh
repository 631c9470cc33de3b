# Wheels the lent GPU machine's image lacks (no network there), shared by benchmarks/gpu.sh and
# scripts/gpu_train.sh. Source it, then:
#   fetch_device_wheels     here (network): download them into .whl/ for the device's Python 3.12
#   install_device_wheels   there: install the carried .whl/ into /tmp/site, then device_pythonpath
#   device_pythonpath       the repository and /tmp/site on PYTHONPATH (a CPU dry run uses only this)
# mamba-ssm and causal-conv1d publish CUDA builds only on their GitHub releases (one per CUDA x
# torch x Python): put matching ones into .whl/ by hand; without them the PyTorch path runs.

DEVICE_WHEELS="soundfile soxr cffi pycparser"

fetch_device_wheels() {
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl $DEVICE_WHEELS
    ls -l .whl
}

install_device_wheels() {
    if ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl ||
            return 1
    fi
    device_pythonpath
}

device_pythonpath() {
    export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
}
