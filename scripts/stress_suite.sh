#!/usr/bin/env bash
# Issue 11's robustness check: the whole suite three times in a row, started as a background job
# (stdin closed, SIGINT ignored as a non-interactive shell's background jobs have it), with a CPU
# hog busy on every core beside it. Each run must pass. Logs: reports/stress/run-N.log.
#   bash scripts/stress_suite.sh [RUNS]          (default 3; uses .venv/bin/python if it exists)
#   STRESS_HOGS=0 bash scripts/stress_suite.sh   (no hogs of its own: beside a job that already
#                                                 keeps every core busy, e.g. a training run)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
python=$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)
mkdir -p reports/stress

hogs=()
for _ in $(seq "${STRESS_HOGS:-$(nproc)}"); do
    "$python" -c "while True: pass" &
    hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT  # ${hogs[@]} is empty with STRESS_HOGS=0

failed=0
for run in $(seq "$runs"); do
    # a background job of a non-interactive shell: SIGINT ignored, no terminal on stdin
    (trap '' INT; exec "$python" -m pytest -q -p no:cacheprovider </dev/null >"reports/stress/run-$run.log" 2>&1) &
    if wait $!; then
        echo "run $run: passed ($(tail -1 "reports/stress/run-$run.log"))"
    else
        echo "run $run: FAILED (reports/stress/run-$run.log)"
        failed=1
    fi
done
exit $failed
