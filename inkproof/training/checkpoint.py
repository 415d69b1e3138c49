"""Checkpoints as safetensors + JSON, written atomically; never pickle.

A checkpoint folder holds the model weights, the optimizer tensors (``optimizer.safetensors``)
and everything else as JSON (``state.json``: epoch, optimizer hyper-parameters, scheduler,
Python/numpy RNG states, history, early-stopping state). The torch RNG state is a byte tensor
and goes into the tensor file. A folder is written under a temporary name and renamed into
place, and ``latest.json`` is replaced atomically afterwards, so a kill at any moment leaves
either the previous or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from inkproof.artifact import sha256_file

LATEST = "latest.json"
CHECKPOINTS = "checkpoints"


def save_weights(model: nn.Module, path: str | Path) -> str:
    """State dict to safetensors (atomic); returns the file's sha256."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(temporary))
    temporary.replace(target)
    return sha256_file(target)


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> None:
    state = load_file(str(path), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise RuntimeError(f"weights {path} do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    skeleton_state: dict[str, Any] = {}
    skeleton: dict[str, Any] = {"param_groups": state["param_groups"], "state": skeleton_state}
    for index, values in state["state"].items():
        entry: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                key = f"state.{index}.{name}"
                tensors[key] = value.detach().cpu().contiguous()
                entry[name] = {"tensor": key}
            else:
                entry[name] = value
        skeleton_state[str(index)] = entry
    return tensors, skeleton


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], skeleton: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for index, values in skeleton["state"].items():
        state[int(index)] = {
            name: tensors[value["tensor"]] if isinstance(value, dict) and "tensor" in value else value
            for name, value in values.items()
        }
    return {"state": state, "param_groups": skeleton["param_groups"]}


def capture_rng() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    py_state = random.getstate()
    # Libraries still draw from numpy's legacy global RNG, so its state is part of a checkpoint.
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))  # noqa: NPY002
    as_json = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for device, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{device}"] = state
    return as_json, tensors


def restore_rng(as_json: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, internal, gauss = as_json["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = as_json["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)


def save_checkpoint(
    run_dir: str | Path,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    *,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``epoch`` atomically and point ``latest.json`` at it."""
    root = Path(run_dir)
    folder = root / CHECKPOINTS / f"epoch-{epoch:04d}"
    temporary = folder.with_name(folder.name + ".tmp")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    save_weights(model, temporary / "model.safetensors")
    optimizer_tensors, optimizer_skeleton = _flatten_optimizer(optimizer.state_dict())
    rng_json, rng_tensors = capture_rng()
    save_file({**optimizer_tensors, **rng_tensors}, str(temporary / "optimizer.safetensors"))
    payload = {
        "epoch": epoch,
        "optimizer": optimizer_skeleton,
        "scheduler": scheduler.state_dict(),
        "rng": rng_json,
        **state,
    }
    (temporary / "state.json").write_text(json.dumps(payload, indent=1, default=_jsonable), encoding="utf-8")
    _fsync_tree(temporary)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(temporary, folder)
    _write_json_atomic(root / LATEST, {"epoch": epoch, "path": str(folder.relative_to(root))})
    _prune(root / CHECKPOINTS, keep=keep, current=folder)
    return folder


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    pointer = Path(run_dir) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(run_dir) / json.loads(pointer.read_text(encoding="utf-8"))["path"]
    return folder if (folder / "state.json").is_file() else None


def load_checkpoint(
    folder: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG states; returns the JSON state."""
    source = Path(folder)
    load_weights(model, source / "model.safetensors")
    tensors = load_file(str(source / "optimizer.safetensors"), device="cpu")
    state: dict[str, Any] = json.loads((source / "state.json").read_text(encoding="utf-8"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], {k: v for k, v in tensors.items() if k.startswith("rng.")})
    return state


def remove_partial_checkpoints(run_dir: str | Path) -> None:
    """Delete ``*.tmp`` folders a killed run may have left behind."""
    folder = Path(run_dir) / CHECKPOINTS
    if folder.is_dir():
        for leftover in folder.glob("*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        with file.open("rb") as handle:
            os.fsync(handle.fileno())


def _prune(folder: Path, *, keep: int, current: Path) -> None:
    finished = sorted(p for p in folder.glob("epoch-*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in finished[:-keep]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")
