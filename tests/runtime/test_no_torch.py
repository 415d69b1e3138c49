"""The inference path must run without torch: verify and embed leave torch unimported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_full_verify_does_not_import_torch(onnx_model: Path, synthetic_root: Path) -> None:
    genuine = sorted((synthetic_root / "W001" / "genuine").iterdir())
    forged = sorted((synthetic_root / "W001" / "forged").iterdir())
    code = f"""
import sys
import inkproof
from inkproof.cli.app import app
verifier = inkproof.Verifier({str(onnx_model)!r})
result = verifier.verify({str(genuine[0])!r}, {str(forged[0])!r})
verifier.verify_many([({str(genuine[0])!r}, {str(genuine[1])!r})])
verifier.embed({str(genuine[1])!r})
try:
    app(["verify", {str(genuine[0])!r}, {str(genuine[1])!r}, "--model", {str(onnx_model)!r}, "--json"])
except SystemExit as exit:
    assert not exit.code, exit.code
heavy = {{"torch", "torchvision", "timm", "albumentations"}}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("LOADED", loaded)
sys.exit(1 if loaded else 0)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
