"""The segmentation pipeline on a tiny synthetic folder dataset: data checks, metrics, training,
resume, ONNX export and the torch-free runtime.

The network is timm's ``test_resnet`` encoder with a narrow U-Net decoder so that training takes
seconds; one module-scoped training run and one export are shared by the tests that need them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from inkproof.segmentation.dataset import (
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
from inkproof.segmentation.metrics import (
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    scores_from_confusion,
)
from inkproof.segmentation.overlay import colour_mask, grid, overlay
from inkproof.segmentation.runtime import SegmentationCard, pad_to_multiple, tile_starts

if TYPE_CHECKING:  # the torch side is imported lazily, so collecting these tests stays cheap
    from inkproof.segmentation.export import SegmentationExportResult
    from inkproof.segmentation.model import SegmentationConfig
    from inkproof.segmentation.train import SegmentationResult

REPO_ROOT = Path(__file__).resolve().parents[2]
PALETTE = ClassPalette(("background", "ink", "box"), ((0, 0, 0), (255, 0, 0), (0, 0, 255)))
HEIGHT, WIDTH = 64, 96


def tiny_config() -> SegmentationConfig:
    from inkproof.segmentation.model import SegmentationConfig

    return SegmentationConfig(classes=3, encoder="tu-test_resnet", decoder_width=2)


def draw_example(seed: int, height: int = HEIGHT, width: int = WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """White paper with a gray box (class 2) and dark strokes (class 1) drawn over it."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (width, height), 245)
    mask = Image.new("L", (width, height), 0)
    paint, label = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    x0, y0 = int(rng.integers(2, width // 2)), int(rng.integers(2, height // 2))
    box = (x0, y0, x0 + int(rng.integers(15, width // 2)), y0 + int(rng.integers(10, height // 2)))
    paint.rectangle(box, fill=160)
    label.rectangle(box, fill=2)
    points = [(float(x), float(rng.uniform(5, height - 5))) for x in np.linspace(5, width - 5, 6)]
    paint.line(points, fill=25, width=3)
    label.line(points, fill=1, width=3)
    return np.asarray(image, dtype=np.uint8).copy(), np.asarray(mask, dtype=np.uint8).copy()


def write_folder(root: Path, count: int = 12) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "colors.csv").write_text(PALETTE.to_csv_text(), encoding="utf-8")
    for index in range(count):
        image, mask = draw_example(index)
        Image.fromarray(image).save(root / "images" / f"page-{index:02d}.png")
        Image.fromarray(index_to_colour(mask, PALETTE)).save(root / "masks" / f"page-{index:02d}.png")
    return root


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("segdata") / "data")


@pytest.fixture
def editable_folder(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "data"))


def train_kwargs(**changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "epochs": 1,
        "batch_size": 4,
        "lr": 3e-3,
        "crop": (64, 64),
        "device": "cpu",
        "progress": False,
        "num_workers": 0,
        "threads": 1,  # tiny tensors: one thread is several times faster than two on a busy machine
        "overlays": 3,
        "log": lambda _: None,
    }
    settings.update(changes)
    return settings


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> SegmentationResult:
    from inkproof.segmentation.train import train_segmentation

    dataset = SegmentationDataset.from_folder(folder, cache=True)
    run = tmp_path_factory.mktemp("segrun") / "run"
    return train_segmentation(tiny_config(), dataset, run, **train_kwargs())


@pytest.fixture(scope="module")
def exported(trained: SegmentationResult, tmp_path_factory: pytest.TempPathFactory) -> SegmentationExportResult:
    from inkproof.segmentation.export import export_segmentation

    out = tmp_path_factory.mktemp("segexport") / "fields.onnx"
    return export_segmentation(trained.run_dir, out, log=None)


# --- data --------------------------------------------------------------------------------------


def test_folder_dataset_loads_and_converts(folder: Path) -> None:
    dataset = SegmentationDataset.from_folder(folder)
    assert len(dataset) == 12
    assert dataset.palette == PALETTE
    image, mask = dataset[0]
    expected_image, expected_mask = draw_example(0)
    assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(image, expected_image)
    np.testing.assert_array_equal(mask, expected_mask)


def test_colour_index_round_trip() -> None:
    mask = np.random.default_rng(0).integers(0, 3, size=(20, 30)).astype(np.uint8)
    rgb = index_to_colour(mask, PALETTE)
    assert rgb.shape == (20, 30, 3)
    assert tuple(rgb[mask == 1][0]) == (255, 0, 0)
    np.testing.assert_array_equal(colour_to_index(rgb, PALETTE), mask)
    rgb[3, 4] = (1, 2, 3)
    with pytest.raises(UnknownColourError) as caught:
        colour_to_index(rgb, PALETTE, source="x.png")
    assert caught.value.colours == {(1, 2, 3): ["x.png"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("label,R,G,B\nbackground,0,0,0\nink,255,0,0\n", "header"),
        ("name,R,G,B\nbackground,0,0,0\nink,255,0\n", "4 fields"),
        ("name,R,G,B\nbackground,0,0,0\nink,red,0,0\n", "integers"),
        ("name,R,G,B\nbackground,0,0,0\nink,300,0,0\n", "0..255"),
        ("name,R,G,B\nbackground,0,0,0\n", "2..255 classes"),
        ("name,R,G,B\nbackground,0,0,0\nink,0,0,0\n", "duplicate colours"),
        ("name,R,G,B\nink,0,0,0\nink,9,9,9\n", "duplicate class names"),
    ],
)
def test_bad_colors_csv(editable_folder: Path, text: str, message: str) -> None:
    (editable_folder / "colors.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ColorsFileError, match=message):
        SegmentationDataset.from_folder(editable_folder)


def test_missing_colors_csv_and_masks(editable_folder: Path) -> None:
    (editable_folder / "masks" / "page-03.png").unlink()
    (editable_folder / "masks" / "page-07.png").unlink()
    with pytest.raises(MissingMaskError) as caught:
        SegmentationDataset.from_folder(editable_folder)
    assert caught.value.stems == ("page-03", "page-07")
    assert "page-03" in str(caught.value)
    (editable_folder / "colors.csv").unlink()
    with pytest.raises(ColorsFileError, match=r"no colors\.csv"):
        SegmentationDataset.from_folder(editable_folder)
    with pytest.raises(SegmentationDataError, match="no images"):
        SegmentationDataset.from_folder(editable_folder / "images")


def test_unknown_colours_are_listed_with_their_files(editable_folder: Path) -> None:
    for stem, colour in (("page-02", (9, 9, 9)), ("page-05", (9, 9, 9)), ("page-06", (0, 255, 0))):
        path = editable_folder / "masks" / f"{stem}.png"
        rgb = np.asarray(Image.open(path).convert("RGB")).copy()
        rgb[0, 0] = colour
        Image.fromarray(rgb).save(path)
    with pytest.raises(UnknownColourError) as caught:
        SegmentationDataset.from_folder(editable_folder)
    assert caught.value.colours == {(0, 255, 0): ["page-06.png"], (9, 9, 9): ["page-02.png", "page-05.png"]}


def test_mask_size_mismatch(editable_folder: Path) -> None:
    Image.new("RGB", (50, 40)).save(editable_folder / "masks" / "page-04.png")
    with pytest.raises(MaskSizeError) as caught:
        SegmentationDataset.from_folder(editable_folder)
    assert caught.value.mismatches == (("page-04", (WIDTH, HEIGHT), (50, 40)),)


def test_split_is_deterministic_and_disjoint(folder: Path) -> None:
    dataset = SegmentationDataset.from_folder(folder)
    train_a, val_a = dataset.split(0.25, seed=1)
    train_b, val_b = SegmentationDataset.from_folder(folder).split(0.25, seed=1)
    assert val_a.keys == val_b.keys and train_a.keys == train_b.keys
    assert len(val_a) == 3 and len(train_a) == 9
    assert not set(train_a.keys) & set(val_a.keys)
    assert dataset.split(0.25, seed=2)[1].keys != val_a.keys  # another seed, another split (here)


def test_source_dataset_checks_examples() -> None:
    dataset = SegmentationDataset.from_source(draw_example, ["background", "ink", "box"], length=5)
    assert len(dataset) == 5 and dataset.palette.colors[0] == (0, 0, 0)
    np.testing.assert_array_equal(dataset[2][1], draw_example(2)[1])
    bad = SegmentationDataset.from_source(
        lambda i: (np.zeros((4, 4), np.uint8), np.full((4, 4), 7)), ["a", "b"], length=1
    )
    with pytest.raises(SegmentationDataError, match="mask values"):
        bad[0]
    wrong = SegmentationDataset.from_source(
        lambda i: (np.zeros((4, 4), np.uint8), np.zeros((4, 5))), ["a", "b"], length=1
    )
    with pytest.raises(SegmentationDataError, match="differs"):
        wrong[0]


# --- metrics and overlays ----------------------------------------------------------------------


def test_metrics_match_hand_computed_values() -> None:
    target = np.array([[0, 0, 1, 1], [0, 2, 2, 255]])
    prediction = np.array([[0, 1, 1, 1], [0, 2, 0, 2]])
    matrix = confusion_matrix(target, prediction, 3, ignore_index=255)
    np.testing.assert_array_equal(matrix, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    # class 0: TP 2, FP 1, FN 1 -> IoU 2/4, Dice 4/6; class 1: TP 2, FP 1 -> 2/3, 4/5; class 2: TP 1, FN 1 -> 1/2, 2/3
    np.testing.assert_allclose(iou_from_confusion(matrix), [0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(dice_from_confusion(matrix), [2 / 3, 0.8, 2 / 3])
    scores = scores_from_confusion(matrix, ["bg", "ink", "box"])
    assert scores.mean_iou == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert scores.pixel_accuracy == pytest.approx(5 / 7)
    # A class absent from target and prediction has no score and does not drag the mean down.
    absent = scores_from_confusion(confusion_matrix(np.array([0, 1]), np.array([0, 1]), 3), ["a", "b", "c"])
    assert np.isnan(absent.iou[2]) and absent.mean_iou == 1.0
    with pytest.raises(ValueError, match=r"0\.\.2"):
        confusion_matrix(np.array([3]), np.array([0]), 3)


def test_overlay_helpers() -> None:
    mask = np.array([[0, 1], [2, 255]])
    np.testing.assert_array_equal(colour_mask(mask, PALETTE.colors)[0, 1], [255, 0, 0])
    np.testing.assert_array_equal(colour_mask(mask, PALETTE.colors)[1, 1], [255, 0, 255])  # ignore: magenta
    gray = np.full((2, 2), 200, np.uint8)
    blended = overlay(gray, mask, PALETTE.colors, alpha=0.5)
    assert blended.dtype == np.uint8 and blended.shape == (2, 2, 3)
    np.testing.assert_array_equal(blended[0, 0], [200, 200, 200])  # background untouched
    np.testing.assert_array_equal(blended[0, 1], [228, 100, 100])
    canvas = grid([gray, blended, np.zeros((5, 3), np.uint8)], columns=2, padding=1)
    assert canvas.shape == (2 * 5 + 3, 2 * 3 + 3, 3)


def test_runtime_geometry() -> None:
    image = np.arange(70 * 50, dtype=np.uint32).reshape(70, 50).astype(np.uint8)
    padded = pad_to_multiple(image, 32, value=255)
    assert padded.shape == (96, 64) and padded[80, 10] == 255
    np.testing.assert_array_equal(padded[:70, :50], image)
    reflected = pad_to_multiple(image, 32, mode="reflect")
    assert reflected[70, 0] == image[68, 0]
    assert tile_starts(100, 64, 16) == [0, 36]
    assert tile_starts(64, 64, 16) == [0]
    assert tile_starts(200, 64, 16) == [0, 48, 96, 136]


# --- model and training ------------------------------------------------------------------------


def test_config_round_trip_and_checks() -> None:
    from inkproof.segmentation.model import SegmentationConfig

    config = SegmentationConfig(classes=4, architecture="fpn", encoder="efficientnet-b0", decoder_width=8)
    assert SegmentationConfig.from_json(config.to_json()) == config
    assert config.multiple == 32
    with pytest.raises(ValueError, match="architecture"):
        SegmentationConfig(architecture="deeplab")
    with pytest.raises(ValueError, match="unknown"):
        SegmentationConfig.from_dict({"classes": 2, "colour": 1})
    with pytest.raises(ValueError, match="tu-tf_efficientnet_lite0"):
        SegmentationConfig(encoder="tu-efficientnet_lite0", encoder_weights="imagenet")


def test_models_build_and_keep_the_input_size() -> None:
    import torch

    from inkproof.segmentation.model import SegmentationConfig, build_segmentation_model

    for config in (
        tiny_config(),
        SegmentationConfig(classes=3, architecture="fpn", encoder="tu-test_resnet", decoder_width=4),
    ):
        model = build_segmentation_model(config).eval()
        with torch.no_grad():
            assert model(torch.rand(2, 1, 64, 96)).shape == (2, 3, 64, 96)


def test_pretrained_lite0_weights_reach_the_encoder() -> None:
    import torch

    from inkproof.models.efficientnet_lite import pretrained_state_dict
    from inkproof.segmentation.model import SegmentationConfig, build_segmentation_model

    config = SegmentationConfig(encoder="tu-tf_efficientnet_lite0", encoder_weights="imagenet", decoder_width=2)
    model = build_segmentation_model(config)
    stem = pretrained_state_dict()["_conv_stem.weight"].sum(dim=1, keepdim=True)
    encoder: Any = model.network.encoder
    assert torch.equal(encoder.model.conv_stem.weight, stem)


def test_loss_ignores_unlabelled_pixels_and_mixup_keeps_distributions() -> None:
    import torch

    from inkproof.segmentation.dataset import IGNORE_INDEX
    from inkproof.segmentation.train import mix_batch, segmentation_loss, soft_targets

    masks = torch.tensor([[[0, 1], [2, IGNORE_INDEX]], [[1, 1], [IGNORE_INDEX, IGNORE_INDEX]]])
    targets, weights = soft_targets(masks, 3)
    assert weights.tolist() == [[[1, 1], [1, 0]], [[1, 1], [0, 0]]]
    images = torch.rand(2, 1, 2, 2)
    mixed_images, mixed_targets, mixed_weights = mix_batch(images, targets, weights, 0.7, torch.tensor([1, 0]))
    labelled = mixed_weights > 0
    assert torch.allclose(mixed_targets.sum(1)[labelled], torch.ones(int(labelled.sum())))
    assert mixed_weights[0, 1, 0] == pytest.approx(0.7)  # labelled only in the first image
    assert torch.allclose(mixed_images, 0.7 * images + 0.3 * images.flip(0))
    logits = torch.randn(2, 3, 2, 2, requires_grad=True)
    loss = segmentation_loss(logits, targets, weights)
    loss.backward()
    assert logits.grad is not None and float(logits.grad[1, :, 1, :].abs().sum()) == 0.0  # ignored pixels


def test_class_weights_scale_each_class_cross_entropy() -> None:
    import torch

    from inkproof.segmentation.train import segmentation_loss, soft_targets

    masks = torch.tensor([[[0, 0], [0, 2]]])  # class 2 is rare
    targets, weights = soft_targets(masks, 3)
    logits = torch.zeros(1, 3, 2, 2)  # uniform: every pixel costs log(3)
    plain = segmentation_loss(logits, targets, weights, dice_weight=0)
    ones = segmentation_loss(logits, targets, weights, dice_weight=0, class_weights=torch.ones(3))
    rare = segmentation_loss(logits, targets, weights, dice_weight=0, class_weights=torch.tensor([1.0, 1.0, 5.0]))
    assert torch.allclose(plain, ones)
    # Three pixels weigh 1 and one weighs 5, over the same four labelled pixels.
    assert float(rare) == pytest.approx(float(plain) * (3 + 5) / 4)


def test_one_epoch_writes_the_run_folder(trained: SegmentationResult) -> None:
    run = trained.run_dir
    for name in ("segmentation.json", "split.json", "history.json", "history.png", "latest.json", "best/model.json"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "epoch-0001" / "model.safetensors").is_file()
    history = json.loads(trained.history_path.read_text())
    assert [h["epoch"] for h in history] == [1]
    assert {"train_loss", "val_loss", "lr", "val_miou", "val_mdice", "val_iou.ink", "val_dice.box"} <= set(history[0])
    assert trained.best_epoch == 1 and 0.0 <= trained.best_miou <= 1.0
    assert set(trained.iou) == set(trained.dice) == {"background", "ink", "box"}
    (overlay_png,) = trained.overlay_paths
    assert overlay_png.name == "epoch-0001.png"
    with Image.open(overlay_png) as im:
        assert im.mode == "RGB" and im.width > 3 * WIDTH and im.height > 2 * HEIGHT  # 3 columns, 3 examples
    card = SegmentationCard.load(trained.card_path)
    assert card.format == "safetensors" and card.class_names == ("background", "ink", "box")
    assert card.validation["miou"] == pytest.approx(trained.best_miou)
    split = json.loads((run / "split.json").read_text())
    assert len(split["validation"]) == 2 and len(split["train"]) == 10


class Interrupt(Exception):
    pass


class StopAt:
    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def on_step_end(self, epoch: int, step: int, loss: float) -> None:
        if (epoch, step) == (self.epoch, self.step):
            raise Interrupt

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


def test_resume_after_interrupt_matches_uninterrupted_run(folder: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from inkproof.segmentation.train import train_segmentation
    from inkproof.training.trainer import TrainingError

    dataset = SegmentationDataset.from_folder(folder, cache=True)
    settings = train_kwargs(epochs=2, overlays=0)
    train_segmentation(tiny_config(), dataset, tmp_path / "straight", **settings)
    with pytest.raises(Interrupt):
        train_segmentation(tiny_config(), dataset, tmp_path / "broken", callbacks=[StopAt(2, 1)], **settings)
    assert json.loads((tmp_path / "broken" / "latest.json").read_text())["epoch"] == 1
    with pytest.raises(TrainingError, match="already holds a run"):
        train_segmentation(tiny_config(), dataset, tmp_path / "broken", **settings)
    with pytest.raises(TrainingError, match=r"training\.lr"):
        train_segmentation(tiny_config(), dataset, tmp_path / "broken", resume=True, **{**settings, "lr": 1.0})
    result = train_segmentation(tiny_config(), dataset, tmp_path / "broken", resume=True, **settings)
    assert result.epochs_run == 2
    straight = load_file(str(tmp_path / "straight" / "checkpoints" / "epoch-0002" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "broken" / "checkpoints" / "epoch-0002" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    history_a = json.loads((tmp_path / "straight" / "history.json").read_text())
    history_b = json.loads((tmp_path / "broken" / "history.json").read_text())
    assert [h["val_miou"] for h in history_a] == [h["val_miou"] for h in history_b]


# --- export and runtime ------------------------------------------------------------------------


def test_export_parity_dynamic_sizes_and_card(exported: SegmentationExportResult, trained: SegmentationResult) -> None:
    import onnx

    from inkproof.segmentation.runtime import SegmentationEngine

    assert exported.parity.passed and set(exported.parity.max_abs_diff) == {"64x96", "96x128"}
    assert exported.parity.worst <= 1e-4
    card = SegmentationCard.load(exported.card_path)
    assert card.format == "onnx" and card.files == {"model": "fields.onnx"}
    assert card.class_colors == PALETTE.colors
    assert card.validation["miou"] == pytest.approx(trained.best_miou)
    metadata = {p.key: p.value for p in onnx.load(str(exported.model_path)).metadata_props}
    assert metadata["inkproof.task"] == "segmentation"
    assert json.loads(metadata["inkproof.classes"])["names"] == ["background", "ink", "box"]
    with SegmentationEngine.from_card(exported.card_path, device="cpu", threads=1) as engine:
        for shape in ((1, 1, 64, 96), (3, 1, 96, 128), (1, 1, 160, 64)):
            probabilities = engine.run(np.random.default_rng(0).random(shape, dtype=np.float32))
            assert probabilities.shape == (shape[0], 3, shape[2], shape[3])
            np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_runtime_pads_crops_and_tiles(exported: SegmentationExportResult) -> None:
    from inkproof.segmentation.runtime import SegmentationEngine

    card_path = exported.card_path
    image, _ = draw_example(3, height=70, width=100)
    with SegmentationEngine.from_card(card_path, device="cpu", threads=1) as engine:
        mask, probabilities = engine.predict(image)
        assert mask.shape == (70, 100) and mask.dtype == np.uint8
        assert probabilities.shape == (3, 70, 100)
        np.testing.assert_array_equal(mask, probabilities.argmax(axis=0))
        reference = engine.run(pad_to_multiple(image, 32, value=255)[None, None].astype(np.float32) / 255.0)
        np.testing.assert_allclose(probabilities, reference[0, :, :70, :100], atol=1e-6)
    with SegmentationEngine.from_card(card_path, device="cpu", threads=1, pad_mode="reflect") as engine:
        assert engine.predict(image)[0].shape == (70, 100)
    page, _ = draw_example(5, height=150, width=230)
    with SegmentationEngine.from_card(card_path, device="cpu", threads=1, tile=64, overlap=16) as engine:
        tiled_mask, tiled = engine.predict(page)
        assert tiled_mask.shape == (150, 230)
        np.testing.assert_allclose(tiled.sum(axis=0), 1.0, atol=1e-5)
    with SegmentationEngine.from_card(card_path, device="cpu", threads=1, tile=512) as engine:
        whole = engine.predict(page)[1]  # the tile covers the page: identical to no tiling
    with SegmentationEngine.from_card(card_path, device="cpu", threads=1) as engine:
        np.testing.assert_allclose(whole, engine.predict(page)[1], atol=1e-6)


def test_runtime_does_not_import_torch(exported: SegmentationExportResult) -> None:
    card_path = exported.card_path
    script = (
        "import sys, numpy as np\n"
        "from inkproof.segmentation import SegmentationEngine\n"
        f"engine = SegmentationEngine.from_card({str(card_path)!r}, device='cpu', threads=1)\n"
        "mask, probabilities = engine.predict(np.full((40, 50), 240, np.uint8))\n"
        "assert mask.shape == (40, 50), mask.shape\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_runtime_refuses_training_cards(trained: SegmentationResult) -> None:
    from inkproof.artifact import ArtifactError
    from inkproof.segmentation.runtime import SegmentationEngine

    with pytest.raises(ArtifactError, match="export it to ONNX"):
        SegmentationEngine.from_card(trained.card_path)
