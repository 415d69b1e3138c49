"""Inference speed: latency at batch 1 and throughput at several batch sizes, for onnxruntime
fp32, onnxruntime int8 and (when torch is installed) torch eager, measured in one run so the
ratios are comparable on a shared, noisy machine; preprocessing is timed on its own."""

from __future__ import annotations

import importlib.util
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inkproof.artifact import ModelCard, card_path_for
from inkproof.benchmark.report import describe_machine, machine_description
from inkproof.data.synthetic import sample_signatures
from inkproof.imaging import load_image
from inkproof.preprocess import preprocess_signature

DEFAULT_BATCHES = (1, 8, 32, 128)


@dataclass(frozen=True)
class BackendTiming:
    backend: str
    latency_ms: dict[str, float]  # p50 / p95 / p99 at batch 1, per signature
    throughput: dict[int, float]  # batch size -> signatures per second

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["throughput"] = {str(k): v for k, v in self.throughput.items()}
        return values


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    values = np.array(samples) * 1000.0
    return {f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)}


def _time_backend(
    name: str,
    run: Callable[[np.ndarray], object],
    inputs: np.ndarray,
    batches: Sequence[int],
    latency_runs: int,
    seconds: float,
) -> BackendTiming:
    single = inputs[:1]
    for _ in range(10):
        run(single)
    latencies = []
    for _ in range(latency_runs):
        began = time.perf_counter()
        run(single)
        latencies.append(time.perf_counter() - began)
    throughput: dict[int, float] = {}
    for size in batches:
        batch = np.resize(inputs, (size, *inputs.shape[1:]))
        run(batch)
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            run(batch)
            done += size
        throughput[size] = done / (time.perf_counter() - began)
    return BackendTiming(name, _percentiles(latencies), throughput)


def _torch_runner(card: ModelCard, threads: int) -> Callable[[np.ndarray], object]:
    import torch

    from inkproof.models.registry import build_model, config_from_dict

    torch.set_num_threads(threads)
    # Speed does not depend on the weights: the architecture of the card, freshly initialised.
    model = build_model(card.name, config_from_dict(card.name, card.model_config), input_size=card.input_size).eval()

    def run(batch: np.ndarray) -> object:
        with torch.inference_mode():
            return model.embed(torch.from_numpy(batch[:, None]))

    return run


def preprocessing_latency(card: ModelCard, images: Sequence[np.ndarray], runs: int = 100) -> dict[str, float]:
    """Decode (PNG bytes) + preprocess time per signature, single thread."""
    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    config = card.preprocess_config
    samples = []
    for index in range(runs):
        began = time.perf_counter()
        preprocess_signature(load_image(encoded[index % len(encoded)]), config)
        samples.append(time.perf_counter() - began)
    return _percentiles(samples)


def run_speed_benchmark(
    model: str | Path,
    *,
    int8: str | Path | None = None,
    include_torch: bool = True,
    batches: Sequence[int] = DEFAULT_BATCHES,
    threads: int | None = None,
    latency_runs: int = 200,
    seconds: float = 2.0,
) -> dict[str, Any]:
    """Time every available backend on the same inputs; returns a JSON-ready record."""
    import os

    from inkproof.runtime.engine import Engine

    threads = threads or os.cpu_count() or 1
    card_path = card_path_for(model)
    card = ModelCard.load(card_path)
    raw = sample_signatures(16, seed=7)
    inputs = np.stack([preprocess_signature(image, card.preprocess_config) for image in raw])
    timings: list[BackendTiming] = []
    engines = [("onnxruntime fp32", card_path)] + ([("onnxruntime int8", card_path_for(int8))] if int8 else [])
    for name, path in engines:
        with Engine.from_card(path, device="cpu", threads=threads, batch_size=max(batches)) as engine:
            timings.append(_time_backend(name, engine.embed, inputs, batches, latency_runs, seconds))
    if include_torch and importlib.util.find_spec("torch") is not None:
        timings.append(
            _time_backend("torch eager", _torch_runner(card, threads), inputs, batches, latency_runs, seconds)
        )
    machine = machine_description()
    return {
        "model": card.name,
        "model_config": card.model_config,
        "input_size": list(card.input_size),
        "threads": threads,
        "machine": machine,
        "preprocessing_ms": preprocessing_latency(card, raw),
        "backends": [t.to_dict() for t in timings],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def speed_markdown(record: dict[str, Any]) -> str:
    """The markdown table (and ratios) of one speed record."""
    backends = record["backends"]
    batches = list(backends[0]["throughput"]) if backends else []
    lines = [
        f"Model `{record['model']}` at {record['input_size'][0]}x{record['input_size'][1]}, "
        f"{record['threads']} threads, {record['timestamp']}.",
        f"Machine: {describe_machine(record['machine'])}.",
        "",
        "| backend | p50 ms | p95 ms | p99 ms (batch 1) | " + " | ".join(f"sig/s @ {b}" for b in batches) + " |",
        "|---|---|---|---|" + "---|" * len(batches),
    ]
    for backend in backends:
        latency = backend["latency_ms"]
        cells = " | ".join(f"{backend['throughput'][b]:.0f}" for b in batches)
        lines.append(
            f"| {backend['backend']} | {latency['p50']:.2f} | {latency['p95']:.2f} | {latency['p99']:.2f} | {cells} |"
        )
    prep = record["preprocessing_ms"]
    lines += [
        "",
        f"Preprocessing (PNG decode + preprocess, one thread): p50 {prep['p50']:.2f} ms, "
        f"p95 {prep['p95']:.2f} ms, p99 {prep['p99']:.2f} ms per signature.",
    ]
    by_name = {b["backend"]: b for b in backends}
    if "torch eager" in by_name and "onnxruntime fp32" in by_name:
        fast, slow = by_name["onnxruntime fp32"], by_name["torch eager"]
        ratio_latency = slow["latency_ms"]["p50"] / fast["latency_ms"]["p50"]
        best = max(batches, key=lambda b: fast["throughput"][b])
        ratio_throughput = fast["throughput"][best] / slow["throughput"][best]
        lines.append(
            "onnxruntime fp32 vs torch eager in this run: "
            f"{ratio_latency:.1f}x lower p50 latency at batch 1, "
            f"{ratio_throughput:.1f}x the throughput at batch {best}."
        )
    return "\n".join(lines)
