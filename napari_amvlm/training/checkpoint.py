"""Resumable training state in one safetensors file: model tensors, optimizer tensors, JSON metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._atomic import atomic_write

RESUME_NAME = "resume.safetensors"


def save_resume(path: Path, model_state: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                meta: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    opt = optimizer.state_dict()
    for pid, st in opt["state"].items():
        for name, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"optim.{pid}.{name}"] = t.detach().cpu().contiguous()
    info = {"meta": meta, "param_groups": opt["param_groups"]}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata={"resume": json.dumps(info)}))


def load_resume(path: Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """(model state, optimizer state dict, meta). Raises ValueError with the path on a damaged file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            info = json.loads(f.metadata()["resume"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot resume from {path}: the file is damaged ({err})") from err
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    return model_state, {"state": state, "param_groups": info["param_groups"]}, info["meta"]
