"""inkproof: offline handwritten signature verification.

Importing the package is cheap: it pulls in no deep-learning framework. Heavy pieces (training
with torch, the onnxruntime engine, the service) load only when used.
"""

from inkproof.errors import (
    DatasetFormatError,
    EmptyDatasetError,
    InkproofError,
    InvalidImageError,
    SplitError,
    UnknownWriterError,
)

__version__ = "0.1.0"

__all__ = [
    "DatasetFormatError",
    "EmptyDatasetError",
    "InkproofError",
    "InvalidImageError",
    "SplitError",
    "UnknownWriterError",
    "__version__",
]
