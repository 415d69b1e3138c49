"""inkproof: offline handwritten signature verification.

Importing the package is cheap: it pulls in no deep-learning framework. Heavy pieces (training
with torch, the onnxruntime engine, the service) load only when used.
"""

from typing import TYPE_CHECKING

from inkproof.errors import (
    DatasetFormatError,
    EmptyDatasetError,
    InkproofError,
    InvalidImageError,
    SplitError,
    UnknownWriterError,
)

if TYPE_CHECKING:
    from inkproof.verifier import EmbeddingResult, VerificationResult, Verifier, embed, verify

__version__ = "0.1.0"

# The inference API loads lazily so that `import inkproof` stays cheap.
_LAZY = {
    "Verifier": "inkproof.verifier",
    "VerificationResult": "inkproof.verifier",
    "EmbeddingResult": "inkproof.verifier",
    "verify": "inkproof.verifier",
    "embed": "inkproof.verifier",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'inkproof' has no attribute {name!r}")


__all__ = [
    "DatasetFormatError",
    "EmbeddingResult",
    "EmptyDatasetError",
    "InkproofError",
    "InvalidImageError",
    "SplitError",
    "UnknownWriterError",
    "VerificationResult",
    "Verifier",
    "__version__",
    "embed",
    "verify",
]
