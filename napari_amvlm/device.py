"""Device choice shared by the CLI, the training loops and the plugin."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then MPS, then the CPU; asking for an absent accelerator is a clear error."""
    name = (name or "auto").lower()
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        for cand in ("cuda", "mps"):
            if cand in available_devices():
                return torch.device(cand)
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA GPU is available (use --device cpu or auto)")
    if name == "mps" and "mps" not in available_devices():
        raise ValueError("MPS was requested but is not available on this machine")
    return torch.device(name)


def autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op context elsewhere."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)
