from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import inkproof
from inkproof.errors import InkproofError
from inkproof.models.device import DeviceUnavailableError, resolve_device


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA") as caught:
            resolve_device("cuda")
        assert isinstance(caught.value, InkproofError)


def test_models_and_scoring_never_import_the_trainer() -> None:
    """evaluation.scoring -> models.torch_scorer must not reach back into training.trainer (which
    imports evaluation), not even lazily inside a function: the device helper is a leaf both use."""
    package = Path(inkproof.__file__).parent
    for source in [*sorted((package / "models").glob("*.py")), package / "evaluation" / "scoring.py"]:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "inkproof.training.trainer", source.name
