"""The torch-free inference engine: onnxruntime sessions for the embedder and the pair head.

Everything that only verifies (CLI, Python API, service) runs through :class:`Engine` with
numpy, Pillow and onnxruntime alone. Preprocessing (the same versioned function as training)
runs on a thread pool; embeddings are computed in batches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from inkproof.artifact import ArtifactError, ModelCard, card_path_for
from inkproof.errors import InvalidImageError
from inkproof.imaging import DEFAULT_MAX_PIXELS, ImageSource, load_image
from inkproof.preprocess import preprocess_signature

DEVICES = ("auto", "cpu", "cuda", "tensorrt")


def providers_for(device: str) -> list[Any]:
    """onnxruntime execution providers for ``device``; ``auto`` prefers a GPU when one is usable."""
    import onnxruntime as ort

    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    available = set(ort.get_available_providers())
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "tensorrt":
        if "TensorrtExecutionProvider" not in available:
            raise ArtifactError("onnxruntime was built without TensorRT (install onnxruntime-gpu with TensorRT)")
        return [
            ("TensorrtExecutionProvider", {"trt_fp16_enable": True}),
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ArtifactError("onnxruntime has no CUDA support here (install onnxruntime-gpu on a GPU machine)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]


class Engine:
    """A loaded ONNX model (embedder + head) with its card; implements the Scorer protocol."""

    def __init__(
        self,
        card: ModelCard,
        embedder: str | Path,
        head: str | Path,
        *,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 32,
        preprocess_workers: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        import onnxruntime as ort

        self.card = card
        self.preprocess_config = card.preprocess_config
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.card_path: Path | None = None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        providers = providers_for(device)
        self._embedder = ort.InferenceSession(str(embedder), options, providers=providers)
        self._head = ort.InferenceSession(str(head), options, providers=providers)
        self._input = self._embedder.get_inputs()[0].name
        self._head_inputs = [i.name for i in self._head.get_inputs()]
        self._pool = ThreadPoolExecutor(max_workers=preprocess_workers or min(4, os.cpu_count() or 1))

    @classmethod
    def from_card(cls, card_path: str | Path, **options: Any) -> Engine:
        path = card_path_for(card_path)
        card = ModelCard.load(path)
        if card.format not in ("onnx", "onnx-int8"):
            raise ArtifactError(
                f"{path} describes a {card.format} model; the engine runs ONNX models (inkproof export)"
            )
        engine = cls(card, card.path_of("embedder", path), card.path_of("head", path), **options)
        engine.card_path = path  # lets another process (a service worker) open the same model
        return engine

    @property
    def providers(self) -> list[str]:
        return list(self._embedder.get_providers())

    # --- preprocessing ---------------------------------------------------------------------

    def prepare(self, source: ImageSource) -> np.ndarray:
        """Load and preprocess one image: (H, W) float32 model input."""
        return preprocess_signature(load_image(source, max_pixels=self.max_pixels), self.preprocess_config)

    def prepare_many(self, sources: Sequence[ImageSource]) -> np.ndarray:
        """(N, H, W) model inputs, preprocessed in parallel (order kept)."""
        if not sources:
            return np.zeros((0, *self.preprocess_config.input_size), dtype=np.float32)
        if len(sources) == 1:  # one image (a request): a hop to the pool would only add latency
            return self.prepare(sources[0])[None]
        return np.stack(list(self._pool.map(self.prepare, sources)))

    def prepare_each(self, sources: Sequence[ImageSource]) -> list[np.ndarray | InvalidImageError]:
        """Like :meth:`prepare_many`, but an image that cannot be read gets its error in its place
        instead of failing the whole batch (a nightly batch should not stop at one bad scan)."""

        def attempt(source: ImageSource) -> np.ndarray | InvalidImageError:
            try:
                return self.prepare(source)
            except InvalidImageError as error:
                return error

        return list(self._pool.map(attempt, sources))

    # --- the Scorer protocol ---------------------------------------------------------------

    def embed(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, 1, H, W) float32 inputs in [0, 1] -> (N, D) embeddings."""
        batch = np.asarray(images, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[:, None]
        expected = (1, *self.preprocess_config.input_size)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(f"expected inputs of shape (N, {expected[1]}, {expected[2]}), got {images.shape}")
        outputs = [
            self._embedder.run(None, {self._input: np.ascontiguousarray(batch[i : i + self.batch_size])})[0]
            for i in range(0, len(batch), self.batch_size)
        ]
        if not outputs:
            return np.zeros((0, self.card.embedding_dim), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise pair scores of two (M, D) embedding arrays (higher = same writer)."""
        left = np.ascontiguousarray(a, dtype=np.float32)
        right = np.ascontiguousarray(b, dtype=np.float32)
        if left.shape != right.shape or left.ndim != 2:
            raise ValueError(f"expected two (M, D) arrays of one shape, got {left.shape} and {right.shape}")
        chunk = 65536
        scores = [
            self._head.run(
                None, {self._head_inputs[0]: left[i : i + chunk], self._head_inputs[1]: right[i : i + chunk]}
            )[0]
            for i in range(0, len(left), chunk)
        ]
        return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)

    # --- conveniences ----------------------------------------------------------------------

    def embed_sources(self, sources: Sequence[ImageSource]) -> np.ndarray:
        return self.embed(self.prepare_many(sources))

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
