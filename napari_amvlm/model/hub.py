"""Find, save and load AMVLM model folders: ``config.json`` + ``model.safetensors`` (never pickles).

The frozen layers of the default text encoder are not stored: they come from the installed package. Everything
that was trained (vision encoder, heads, fine-tuned text layers) is.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._atomic import atomic_write, atomic_write_text
from ..config import AMVLMConfig, from_dict, to_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "napari-amvlm/amvlm-v1"


class ModelLoadError(ValueError):
    """A model folder that is missing, truncated, or does not match its config."""


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state to store: every tensor except the frozen parameters of the text encoder."""
    frozen = {f"text.{n}" for n, p in model.text.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in frozen}


def save_model(model: torch.nn.Module, folder: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write config.json and model.safetensors into ``folder`` atomically (each file is all-or-nothing)."""
    folder = Path(folder)
    state = trained_state(model)
    meta = {"format": FORMAT, **(metadata or {})}
    atomic_write(folder / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata=meta))
    atomic_write_text(folder / CONFIG_NAME, json.dumps({"format": FORMAT, "model": to_dict(model.cfg)}, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> AMVLMConfig:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"model folder not found: {folder}")
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ModelLoadError(f"{folder} is not an AMVLM model folder: {CONFIG_NAME} is missing")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT or "model" not in data:
        raise ModelLoadError(f"{path} is not an AMVLM model config (format {FORMAT!r} expected)")
    return from_dict(AMVLMConfig, data["model"])


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelLoadError(f"{Path(folder)} has no {WEIGHTS_NAME}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelLoadError(f"{path} is damaged or truncated and cannot be read ({err})") from err


def check_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights that do not fit the model, naming the first few problems."""
    expected = trained_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} tensors of the wrong shape (e.g. {'; '.join(wrong[:3])})")
    if problems:
        raise ModelLoadError(f"{source} does not match its config: " + "; ".join(problems))


def load_model(folder: str | Path, device: str | torch.device = "cpu"):
    """Build the model described by ``folder/config.json`` and load its weights. Returns the model in eval mode."""
    from .amvlm import AMVLM

    cfg = read_config(folder)
    state = read_weights(folder)
    model = AMVLM(cfg)
    check_state(model, state, str(Path(folder) / WEIGHTS_NAME))
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()
