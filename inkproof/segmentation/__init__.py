"""Generic image segmentation: folder datasets, smp networks, training, ONNX export, torch-free runtime.

Used to clean signatures and to find fields on pages, and usable on its own. Importing this
package is cheap: names are resolved lazily, and only training/export pull in torch.

Example::

    from inkproof.segmentation import (
        SegmentationConfig, SegmentationDataset, SegmentationEngine, export_segmentation, train_segmentation,
    )

    data = SegmentationDataset.from_folder("data/fields")          # images/, masks/, colors.csv
    config = SegmentationConfig(classes=len(data.palette), architecture="unet", encoder="mobilenet_v2")
    result = train_segmentation(config, data, "runs/fields", epochs=40, batch_size=8, crop=(384, 384))
    print(result.best_miou, result.iou)                              # per-class IoU of the best epoch

    exported = export_segmentation(result.run_dir, "models/fields.onnx")   # + models/fields.json
    engine = SegmentationEngine.from_card(exported.card_path, tile=1024)   # no torch needed from here
    mask, probabilities = engine.predict("page.png")                       # (H, W) classes, (C, H, W)

A synthesising trainer passes ``SegmentationDataset.from_source(make_example, ["background", "ink"],
length=5000)`` where ``make_example(index) -> (gray uint8, class-index mask)``.

Modules: ``dataset`` (folder format, validation, colour <-> index), ``model`` (config, networks),
``train``, ``metrics`` (confusion-matrix IoU/Dice), ``export`` (ONNX + card + parity),
``runtime`` (SegmentationEngine, SegmentationCard), ``overlay`` (colour masks, overlays, grids;
``overlay.overlay`` is not re-exported here because the submodule owns that name).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ClassPalette": "dataset",
    "SegmentationDataset": "dataset",
    "SegmentationDataError": "dataset",
    "MissingMaskError": "dataset",
    "UnknownColourError": "dataset",
    "MaskSizeError": "dataset",
    "ColorsFileError": "dataset",
    "colour_to_index": "dataset",
    "index_to_colour": "dataset",
    "IGNORE_INDEX": "dataset",
    "SegmentationConfig": "model",
    "build_segmentation_model": "model",
    "AugmentSettings": "train",
    "SegmentationResult": "train",
    "train_segmentation": "train",
    "load_trained_model": "train",
    "SegmentationScores": "metrics",
    "confusion_matrix": "metrics",
    "iou_from_confusion": "metrics",
    "dice_from_confusion": "metrics",
    "export_segmentation": "export",
    "SegmentationExportResult": "export",
    "SegmentationCard": "runtime",
    "SegmentationEngine": "runtime",
    "colour_mask": "overlay",
    "grid": "overlay",
}

__all__ = [
    "IGNORE_INDEX",
    "AugmentSettings",
    "ClassPalette",
    "ColorsFileError",
    "MaskSizeError",
    "MissingMaskError",
    "SegmentationCard",
    "SegmentationConfig",
    "SegmentationDataError",
    "SegmentationDataset",
    "SegmentationEngine",
    "SegmentationExportResult",
    "SegmentationResult",
    "SegmentationScores",
    "UnknownColourError",
    "build_segmentation_model",
    "colour_mask",
    "colour_to_index",
    "confusion_matrix",
    "dice_from_confusion",
    "export_segmentation",
    "grid",
    "index_to_colour",
    "iou_from_confusion",
    "load_trained_model",
    "train_segmentation",
]

if TYPE_CHECKING:
    from inkproof.segmentation.dataset import (
        IGNORE_INDEX,
        ClassPalette,
        ColorsFileError,
        MaskSizeError,
        MissingMaskError,
        SegmentationDataError,
        SegmentationDataset,
        UnknownColourError,
        colour_to_index,
        index_to_colour,
    )
    from inkproof.segmentation.export import SegmentationExportResult, export_segmentation
    from inkproof.segmentation.metrics import (
        SegmentationScores,
        confusion_matrix,
        dice_from_confusion,
        iou_from_confusion,
    )
    from inkproof.segmentation.model import SegmentationConfig, build_segmentation_model
    from inkproof.segmentation.overlay import colour_mask, grid
    from inkproof.segmentation.runtime import SegmentationCard, SegmentationEngine
    from inkproof.segmentation.train import (
        AugmentSettings,
        SegmentationResult,
        load_trained_model,
        train_segmentation,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
