"""The shortcut check: can a single image tell genuine from forged without looking at a writer?

CEDAR's genuine signatures were scanned on gray paper and its forgeries on white paper, so a
classifier can separate them from the background alone. This check trains single-image
genuine-vs-forged classifiers on some CEDAR writers and tests them on unseen writers:

* a background-only baseline (logistic regression on the border median and the share of
  near-white pixels), on raw images and on inkproof's preprocessed inputs;
* a small CNN on the whole image, on raw (resized, no background removal) and on preprocessed
  inputs.

Accuracy near 50 % on preprocessed inputs for the background baseline shows preprocessing removes
the cue. The CNN on preprocessed inputs may stay above chance for a legitimate reason (skilled
forgeries are drawn slowly and look different); the report states both numbers as measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inkproof.data.adapters import load_dataset
from inkproof.data.splits import split_writers
from inkproof.imaging import load_image
from inkproof.preprocess import PreprocessConfig, preprocess_signature


@dataclass(frozen=True)
class ShortcutResult:
    classifier: str
    inputs: str
    test_accuracy: float
    train_writers: int
    test_writers: int
    test_images: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _raw_input(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The whole scan resized, ink bright, without removing the background."""
    resized = np.asarray(Image.fromarray(gray).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return 1.0 - resized.astype(np.float32) / 255.0


def _background_features(image: np.ndarray) -> np.ndarray:
    """Border median and share of paper-white pixels; on ink-bright inputs, paper is near 0."""
    border = np.concatenate([image[:5].ravel(), image[-5:].ravel(), image[:, :5].ravel(), image[:, -5:].ravel()])
    return np.array([np.median(border), float((image <= 2 / 255).mean())], dtype=np.float64)


def _logistic_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=1000).fit(scaler.transform(x_train), y_train)
    return float((model.predict(scaler.transform(x_test)) == y_test).mean())


def _cnn_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *, epochs: int, seed: int
) -> float:
    import torch
    from torch import nn

    from inkproof.models.compact import CompactBody

    torch.manual_seed(seed)
    body = CompactBody(width=8, depth=(1, 1, 1, 1), conv_dropout=0.0)
    model = nn.Sequential(body, nn.Linear(body.feature_dim, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    inputs = torch.from_numpy(x_train[:, None])
    targets = torch.from_numpy(y_train.astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(inputs), generator=generator).split(32):
            loss = nn.functional.binary_cross_entropy_with_logits(model(inputs[batch]).squeeze(1), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test[:, None])).squeeze(1).numpy()
    return float(((logits >= 0).astype(int) == y_test).mean())


def run_shortcut_check(
    cedar: str | Path, *, seed: int = 0, size: tuple[int, int] = (64, 96), epochs: int = 8
) -> dict[str, Any]:
    """Train on 60 % of CEDAR's writers, test on the other 40 %; returns a JSON-ready record."""
    dataset = load_dataset(cedar, "cedar")
    split = split_writers(dataset.writers(), fractions=(0.6, 0.0, 0.4), seed=seed)
    config = PreprocessConfig(height=size[0], width=size[1])
    arrays: dict[str, dict[str, list[np.ndarray]]] = {
        "raw": {"train": [], "test": []},
        "preprocessed": {"train": [], "test": []},
    }
    labels: dict[str, list[int]] = {"train": [], "test": []}
    for role, writers in (("train", split.train), ("test", split.test)):
        for record in dataset.subset(writers).records:
            gray = load_image(record.path)
            arrays["raw"][role].append(_raw_input(gray, size))
            arrays["preprocessed"][role].append(preprocess_signature(gray, config))
            labels[role].append(1 if record.is_genuine else 0)
    y_train, y_test = np.array(labels["train"]), np.array(labels["test"])
    results = []
    began = time.perf_counter()
    for inputs in ("raw", "preprocessed"):
        train_images = np.stack(arrays[inputs]["train"])
        test_images = np.stack(arrays[inputs]["test"])
        background = _logistic_accuracy(
            np.stack([_background_features(i) for i in train_images]),
            y_train,
            np.stack([_background_features(i) for i in test_images]),
            y_test,
        )
        cnn = _cnn_accuracy(train_images, y_train, test_images, y_test, epochs=epochs, seed=seed)
        for name, accuracy in (("background-only logistic regression", background), ("small CNN, whole image", cnn)):
            results.append(ShortcutResult(name, inputs, accuracy, len(split.train), len(split.test), len(y_test)))
    return {
        "dataset": str(dataset.root),
        "seed": seed,
        "input_size": list(size),
        "epochs": epochs,
        "chance": float(max(y_test.mean(), 1 - y_test.mean())),
        "results": [r.to_dict() for r in results],
        "seconds": time.perf_counter() - began,
    }


def shortcut_markdown(record: dict[str, Any]) -> str:
    results = record["results"]
    first = results[0]
    lines = [
        f"Single-image genuine-vs-forged classifiers trained on {first['train_writers']} CEDAR writers and "
        f"tested on {first['test_writers']} unseen writers ({first['test_images']} images; chance "
        f"{record['chance']:.0%}).",
        "",
        "| classifier | raw scans | inkproof preprocessing |",
        "|---|---|---|",
    ]
    by_key = {(r["classifier"], r["inputs"]): r["test_accuracy"] for r in results}
    for classifier in dict.fromkeys(r["classifier"] for r in results):
        lines.append(
            f"| {classifier} | {by_key[(classifier, 'raw')]:.1%} | {by_key[(classifier, 'preprocessed')]:.1%} |"
        )
    return "\n".join(lines)
