"""Prompt -> mask: the inference engine with its embedding cache (:mod:`.predict`), what a typed prompt means to
the model (:mod:`.prompts`), the fusion of the teacher probability and the text mask (:mod:`.fusion`) and the
clean-up of the mask (:mod:`.postprocess`). Engine code: no Qt, no napari."""

from .predict import MODES, Prediction, Segmenter, batch_probabilities, check_mode, image_key

__all__ = ["MODES", "Prediction", "Segmenter", "batch_probabilities", "check_mode", "image_key"]
