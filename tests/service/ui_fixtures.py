"""Helpers of the browser tests: a real uvicorn server in a thread, Chromium, small images."""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """The system Chromium (Debian's /usr/bin/chromium), or None."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def serve(app: Any, *, startup_timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a background thread; yields the base URL.

    The listening socket is bound here and handed to uvicorn, so no other process can take the
    port between choosing and binding it. The server is stopped (and its thread joined) on exit.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"ui-server-{port}", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    try:
        while True:
            if not thread.is_alive():
                raise RuntimeError("the uvicorn server thread exited during start-up")
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer {base}/api/v1/health within {startup_timeout} s")
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        if thread.is_alive():  # pragma: no cover - only when uvicorn hangs
            raise RuntimeError("the uvicorn server did not stop")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def blank_png(width: int = 300, height: int = 120) -> bytes:
    """A readable image with no ink at all: the quality check rejects it."""
    return png_bytes(Image.new("L", (width, height), 245))


def upload(path: Path, name: str | None = None) -> dict[str, Any]:
    """A Playwright file payload (name, MIME type, bytes) for ``set_input_files``."""
    return {"name": name or path.name, "mimeType": "image/png", "buffer": path.read_bytes()}


def buffer_upload(name: str, data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ui/<name>.png (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
