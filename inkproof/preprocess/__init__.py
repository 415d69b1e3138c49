"""Preprocessing: the single versioned image-to-model-input function (see :mod:`.signature`)."""

from inkproof.preprocess.signature import (
    PREPROCESS_VERSION,
    PreprocessConfig,
    ink_mask,
    otsu_threshold,
    preprocess,
    preprocess_signature,
)

__all__ = [
    "PREPROCESS_VERSION",
    "PreprocessConfig",
    "ink_mask",
    "otsu_threshold",
    "preprocess",
    "preprocess_signature",
]
