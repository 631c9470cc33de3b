"""Running a trainer under torchrun in tests."""

import socket
import subprocess
import sys


def torchrun_train(task: str, config_file) -> subprocess.CompletedProcess:
    """`python -m streamssm.train TASK --config FILE` as 2 torchrun processes, rendezvous on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(port),
            "-m",
            "streamssm.train",
            task,
            "--config",
            str(config_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
