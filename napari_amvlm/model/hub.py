"""Find, save and load AMVLM model folders: ``config.json`` + ``model.safetensors`` (never pickles).

A folder may come from anyone: its configs are checked (types, then every size: :mod:`.limits`) and its weights
files' sizes bounded before anything is built or read.

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
from .limits import MAX_WEIGHTS_BYTES, check_amvlm_config, check_file, check_segmenter_config, read_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "napari-amvlm/amvlm-v1"


class ModelLoadError(ValueError):
    """A model folder that is missing, truncated, or does not match its config."""


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state to store: every tensor except the frozen parameters of the text encoder."""
    frozen = {f"text.{n}" for n in model.text.frozen_names}
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
    data = _read_json(path, "model config")
    if not isinstance(data, dict) or data.get("format") != FORMAT or "model" not in data:
        raise ModelLoadError(f"{path} is not an AMVLM model config (format {FORMAT!r} expected)")
    try:
        cfg = from_dict(AMVLMConfig, data["model"])
        check_amvlm_config(cfg, str(path))
    except ValueError as err:
        raise ModelLoadError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
    return cfg


def _read_json(path: Path, what: str):
    try:
        return read_json(path, what)
    except ValueError as err:
        raise ModelLoadError(str(err)) from None


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file of at most MAX_WEIGHTS_BYTES (never a pickle)."""
    try:
        check_file(path, MAX_WEIGHTS_BYTES, "weights file")
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelLoadError(f"{path} is damaged or truncated and cannot be read ({err})") from err


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelLoadError(f"{Path(folder)} has no {WEIGHTS_NAME}")
    return _load_weights(path)


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


SEG_CONFIG_NAME = "segmenter.json"
SEG_WEIGHTS_NAME = "segmenter.safetensors"
SEG_FORMAT = "napari-amvlm/segmenter-v1"


def has_segmenter(folder: str | Path) -> bool:
    return (Path(folder) / SEG_CONFIG_NAME).is_file()


def copy_model_files(src: str | Path, dst: str | Path) -> None:
    """Copy a pre-trained AMVLM's config.json + model.safetensors byte for byte (atomically, skipped if identical)."""
    src, dst = Path(src), Path(dst)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        data = (src / name).read_bytes()
        target = dst / name
        if target.is_file() and target.read_bytes() == data:
            continue
        atomic_write(target, lambda p, d=data: p.write_bytes(d))


def save_segmenter(seg: torch.nn.Module, folder: str | Path, state: dict[str, torch.Tensor] | None = None,
                   metadata: dict[str, str] | None = None, amvlm_source: str | Path | None = None) -> Path:
    """Write the whole model folder: the AMVLM files plus segmenter.json + segmenter.safetensors.

    ``state`` overrides the stage-2 tensors (e.g. with the EMA teacher's U-Net); ``amvlm_source`` is the folder
    the frozen AMVLM was loaded from: its files are copied unchanged instead of serialised again. Each file is
    written atomically.
    """
    folder = Path(folder)
    if amvlm_source is not None and Path(amvlm_source).resolve() != folder.resolve():
        copy_model_files(amvlm_source, folder)
    elif amvlm_source is None:
        save_model(seg.amvlm, folder)
    tensors = state if state is not None else seg.stage2_state()
    meta = {"format": SEG_FORMAT, **(metadata or {})}
    atomic_write(folder / SEG_WEIGHTS_NAME, lambda p: save_file(tensors, str(p), metadata=meta))
    atomic_write_text(folder / SEG_CONFIG_NAME,
                      json.dumps({"format": SEG_FORMAT, "segmenter": to_dict(seg.cfg)}, indent=2) + "\n")
    return folder


def read_segmenter(folder: str | Path):
    """(SegmenterConfig, stage-2 tensors) of a model folder, without building any model."""
    from ..config import SegmenterConfig

    folder = Path(folder)
    amvlm = read_config(folder)  # a clear error for a missing folder or one that is not a model
    path = folder / SEG_CONFIG_NAME
    if not path.is_file():
        raise ModelLoadError(f"{folder} holds a pre-trained AMVLM but no segmenter ({SEG_CONFIG_NAME} is missing): "
                             "train one with `amvlm train`")
    data = _read_json(path, "segmenter config")
    if not isinstance(data, dict) or data.get("format") != SEG_FORMAT or "segmenter" not in data:
        raise ModelLoadError(f"{path} is not a segmenter config (format {SEG_FORMAT!r} expected)")
    try:
        cfg = from_dict(SegmenterConfig, data["segmenter"])
        check_segmenter_config(cfg, amvlm, str(path), check_amvlm_config(amvlm, str(folder / CONFIG_NAME)))
    except ValueError as err:
        raise ModelLoadError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
    wpath = folder / SEG_WEIGHTS_NAME
    if not wpath.is_file():
        raise ModelLoadError(f"{folder} has no {SEG_WEIGHTS_NAME}")
    return cfg, _load_weights(wpath)


def load_stage2(seg: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load stage-2 tensors into a segmenter, refusing ones that do not fit it. Weights saved before the text-mask
    generator had a position prior lack ``textmask.prior``: it stays zero, which is exactly the older model."""
    expected = seg.stage2_state()
    missing_ok = {"textmask.prior"}
    bad = sorted((set(expected) - missing_ok) ^ (set(state) - missing_ok)) + [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if bad:
        raise ModelLoadError(f"{source} does not match {SEG_CONFIG_NAME} (e.g. {', '.join(bad[:3])})")
    seg.load_state_dict(state, strict=False)


def load_segmenter(folder: str | Path, device: str | torch.device = "cpu"):
    """Load a model folder with a trained segmenter (AMVLM + text-mask generator + U-Net) in eval mode."""
    from .segmenter import TextGuidedSegmenter

    folder = Path(folder)
    cfg, state = read_segmenter(folder)  # every config checked before anything is built
    amvlm = load_model(folder)
    seg = TextGuidedSegmenter(amvlm, cfg)
    load_stage2(seg, state, str(folder / SEG_WEIGHTS_NAME))
    return seg.to(device).eval()
