"""Pseudo skilled forgeries: a writer's genuine signature distorted the way an imitation differs
from it (training only, behind ``TrainConfig.pseudo_forgeries_per_writer``).

A forger copies the shape but not the motion: proportions drift, the slant changes, strokes are
drawn slowly (tremor, thicker or thinner lines). Each pseudo forgery applies all of these, more
strongly than the ordinary augmentation (which must keep a genuine signature genuine), so the
model gets extra negatives that look like the writer but are not written like the writer.
"""

from __future__ import annotations

import os
from typing import Any


def make_pseudo_forger(seed: int) -> Any:
    """An albumentations pipeline mapping a preprocessed signature (uint8, ink bright on black) to
    a pseudo skilled forgery of it."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations as A

    return A.Compose(
        [
            # proportions and slant: anisotropic scale and a shear beyond the ordinary +-6 degrees
            A.Affine(scale={"x": (0.8, 1.2), "y": (0.8, 1.2)}, shear={"x": (-18, 18), "y": (-4, 4)}, p=1.0),
            # the shape drawn from memory: a large smooth warp
            A.ElasticTransform(alpha=45, sigma=7, p=1.0),
            # tremor of slow drawing: a small, high-frequency warp of the strokes
            A.ElasticTransform(alpha=6, sigma=1.2, p=0.7),
            A.OneOf(
                [
                    A.Morphological(scale=(2, 3), operation="dilation"),
                    A.Morphological(scale=(2, 2), operation="erosion"),
                ],
                p=0.6,
            ),
        ],
        seed=seed,
    )
