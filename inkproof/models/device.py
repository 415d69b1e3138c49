"""Torch device resolution: a leaf module that training, evaluation and the torch scorer all
import, so none of them needs another (importing it from the trainer closed an import circle)."""

from __future__ import annotations

import torch

from inkproof.errors import InkproofError


class DeviceUnavailableError(InkproofError, RuntimeError):
    """A device was requested that this machine does not have (e.g. CUDA without a GPU)."""


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to torch."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {requested!r} requested but CUDA is not available")
    return device
