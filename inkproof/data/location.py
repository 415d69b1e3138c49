"""Where datasets live: ``--data``, else ``$INKPROOF_DATA``, else ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "INKPROOF_DATA"
DEFAULT_DATA_ROOT = Path("..") / "shared" / "data"


def data_root(explicit: str | Path | None = None) -> Path:
    """The dataset root to use; the path is returned even when it does not exist."""
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get(DATA_ENV)
    return Path(from_env) if from_env else DEFAULT_DATA_ROOT
