"""A real uvicorn server in a subprocess, for what TestClient cannot show: streaming limits on a
socket, an event loop shared with real work, bytes a process wrote, processes it started."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

SERVER = """
import json, sys
from pathlib import Path
import uvicorn
from inkproof.service.app import ServiceSettings, create_app

config = json.loads(sys.argv[1])
options = config["settings"]
for key in ("model", "detector", "cleaner"):
    if options.get(key):
        options[key] = Path(options[key])
app = create_app(ServiceSettings(**options))
uvicorn.run(app, host="127.0.0.1", port=config["port"], log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def io(self) -> dict[str, int]:
        """The server process's /proc/PID/io counters (wchar: bytes it wrote, files and pipes)."""
        text = Path(f"/proc/{self.pid}/io").read_text()
        return {key: int(value) for key, value in (line.split(": ") for line in text.splitlines())}

    def children(self) -> set[int]:
        found: set[int] = set()
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with open(task / "children") as handle:
                found |= {int(pid) for pid in handle.read().split()}
        return found

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes, float]:
        """(status, body, seconds) of one GET."""
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read(), time.perf_counter() - started
        except urllib.error.HTTPError as error:
            return error.code, error.read(), time.perf_counter() - started


@contextmanager
def live_server(settings: dict[str, Any], *, start_timeout: float = 180.0) -> Iterator[LiveServer]:
    port = free_port()
    config = json.dumps({"port": port, "settings": settings})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, config], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, process)
    deadline = time.monotonic() + start_timeout
    try:
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode()[-3000:] if process.stderr else ""
                raise AssertionError(f"the server exited: {error}")
            try:
                if server.get("/api/v1/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start")
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def multipart(fields: list[tuple[str, str, bytes, str]], boundary: str = "inkproofboundary") -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request of (field, filename, data, mime)."""
    parts = []
    for field, filename, data, mime in fields:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        ).encode()
        parts.append(head + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(
    server: LiveServer, path: str, body: bytes, content_type: str, key: str | None, timeout: float = 300.0
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers) of one POST."""
    request = urllib.request.Request(server.url + path, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    if key:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), {k.lower(): v for k, v in error.headers.items()}
