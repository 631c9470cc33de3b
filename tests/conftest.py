import os
from pathlib import Path

import pytest
import torch

# Streaming work is many tiny ops: with 2 threads on a busy 2-core machine they slow down
# by orders of magnitude (thread hand-off), so the suite runs single-threaded.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Real recordings for tests: $STREAMSSM_SHARED_DATA, else ../shared/data beside the repo."""
    return Path(os.environ.get("STREAMSSM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").exists():
        pytest.skip(f"real recordings not found at {path} (set STREAMSSM_SHARED_DATA)")
    return path
