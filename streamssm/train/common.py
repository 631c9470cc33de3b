"""What every trainer shares: torchrun/DDP set-up, safetensors checkpoints that resume, logging."""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


def close_distributed() -> None:
    """Leave the torchrun process group, if this process joined one: a process that exits still in
    it can abort (SIGABRT) while Python shuts down, as gloo's threads outlive the interpreter."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def main_process_first(env: Distributed):
    """Run the block in the main process, then in the others: what it creates is made once and
    then only read (no two processes write the same file)."""
    if not env.is_main:
        dist.barrier()
    yield
    if env.is_main and env.world_size > 1:
        dist.barrier()


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _flatten_optimizer(optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(folder, model, optimizer, progress: dict) -> None:
    """model.safetensors + optimizer.safetensors + progress.json, each replaced atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer)
    files = {
        "model.safetensors": lambda p: save_file(
            {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(p)
        ),
        "optimizer.safetensors": lambda p: save_file(optimizer_tensors, str(p)),
        "progress.json": lambda p: p.write_text(json.dumps({**progress, "optimizer": optimizer_meta}, indent=1)),
    }
    for name, write in files.items():
        tmp = folder / (name + ".tmp")
        write(tmp)
        tmp.replace(folder / name)


def load_checkpoint(folder, model, optimizer) -> dict | None:
    """Restore model and optimizer from `folder`; returns the saved progress, or None if there is none."""
    folder = Path(folder)
    if not (folder / "progress.json").exists():
        return None
    progress = json.loads((folder / "progress.json").read_text())
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, progress.pop("optimizer")))
    return progress


class LossLog:
    """Appends one JSON line per report to a log file and prints a short line."""

    def __init__(self, path, enabled: bool = True):
        self.path, self.enabled, self.start = Path(path), enabled, time.time()
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **values) -> None:
        if not self.enabled:
            return
        values["elapsed_s"] = round(time.time() - self.start, 1)
        with self.path.open("a") as f:
            f.write(json.dumps(values) + "\n")
