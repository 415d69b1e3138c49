"""A bounded load test of the REST service over loopback.

A real ``inkproof serve`` process (uvicorn) answers; the clients run in this process on the same
machine, so the numbers describe the whole box, not the server alone. The clients cost as little
as they can: each multipart body is encoded once and sent over a keep-alive ``http.client``
connection (encoding it with httpx on every request added about 2 ms to each identify here).
Measured:

* verify-claim with 8 and 32 concurrent clients, served by 1 and by 2 worker processes
  (``inkproof serve --workers``): requests per second, p50 and p99 latency, errors;
* identify latency with 1,000 and 100,000 enrolled embeddings (random unit vectors written
  straight into the store besides a few real writers): the first start builds the identification
  index from the database and saves it; the server is then restarted, and the time to health, the
  first identify after the restart and the p50/p99 of later ones are reported.

SQLite by default; ``postgres_url`` runs the same against an (empty) PostgreSQL database, with the
index file in a scratch folder.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from inkproof.benchmark.report import describe_machine, machine_description
from inkproof.data.synthetic import SyntheticConfig, render_genuine, writer_id, writer_style


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _multipart(files: dict[str, tuple[str, bytes, str]], data: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart body and its content type, encoded once for every request that sends it."""
    import httpx

    request = httpx.Request("POST", "http://localhost/", files=files, data=data)
    return request.read(), request.headers["content-type"]


class _Connection:
    """One keep-alive connection that posts prepared bodies (one per client thread)."""

    def __init__(self, base: str, key: str, timeout: float) -> None:
        address = urlsplit(base)
        host = address.hostname or "127.0.0.1"
        self._connection = http.client.HTTPConnection(host, address.port, timeout=timeout)
        self._key = key

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        headers = {"X-API-Key": self._key, "Content-Type": content_type}
        self._connection.request("POST", path, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._connection.close()


@contextmanager
def _server(
    database: Path | str, model: Path | None, port: int, *, workers: int = 1, index_dir: Path | None = None
) -> Any:
    command = [sys.executable, "-m", "inkproof", "serve", "--db", str(database), "--port", str(port)]
    command += ["--workers", str(workers)]
    if index_dir is not None:
        command += ["--index-dir", str(index_dir)]
    if model is not None:
        command += ["--model", str(model)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within two minutes")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    values = np.array(samples) * 1000.0
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def _prepare_store(database: Path | str, model: Path | None, writers: int) -> tuple[str, dict[str, bytes]]:
    """Enroll synthetic writers (5 references each); returns an API key and one query per writer."""
    from inkproof.store import SignatureStore, open_database
    from inkproof.verifier import Verifier

    config = SyntheticConfig(seed=99)
    store = SignatureStore(open_database(database), Verifier(model))
    queries = {}
    for index in range(1, writers + 1):
        style = writer_style(99, index)
        images = [render_genuine(style, sample, config) for sample in range(6)]
        store.enroll(writer_id(index), images[:5])
        queries[writer_id(index)] = _png(images[5])
    key = store.create_api_key("load-test")
    store.db.dispose()
    return key, queries


def _add_random_references(database: Path | str, model: Path | None, count: int, seed: int = 0) -> None:
    """``count`` references with random unit embeddings, one per synthetic writer, in bulk and
    around the store's change log (the server start then rebuilds the index from the table)."""
    from inkproof.artifact import model_tag_of
    from inkproof.store import open_database
    from inkproof.store.bulk import insert_references
    from inkproof.verifier import Verifier

    verifier = Verifier(model)
    tag, dim = model_tag_of(verifier.card), verifier.card.embedding_dim
    rng = np.random.default_rng(seed)
    database_handle = open_database(database)
    with database_handle.session() as session:
        for start in range(0, count, 10_000):
            block = range(start + seed * 10_000_000, min(count, start + 10_000) + seed * 10_000_000)
            vectors = rng.standard_normal((len(block), dim)).astype(np.float32)  # one per writer
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            insert_references(
                session,
                [f"bulk-{i:06d}" for i in block],
                np.arange(len(block)),
                vectors,
                model_tag=tag,
                preprocess_version=verifier.card.preprocess_version,
                first_digest=block.start,
                changes=False,
            )
    database_handle.dispose()
    verifier.close()


def _load(base: str, key: str, queries: dict[str, bytes], clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    bodies = {writer: _multipart({"query": ("q.png", image, "image/png")}) for writer, image in queries.items()}
    writers = list(bodies)

    def worker(offset: int) -> None:
        nonlocal errors
        connection = _Connection(base, key, timeout=60.0)
        try:
            turn = offset
            while time.monotonic() < stop:
                writer = writers[turn % len(writers)]
                turn += 1
                began = time.perf_counter()
                status, _ = connection.post(f"/api/v1/writers/{writer}/verify", *bodies[writer])
                elapsed = time.perf_counter() - began
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                    else:
                        errors += 1
        finally:
            connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_second": len(latencies) / wall,
        **_percentiles(latencies or [0.0]),
    }


def _identify(base: str, key: str, query: bytes, repeats: int) -> dict[str, Any]:
    body = _multipart({"query": ("q.png", query, "image/png")}, {"top": "5"})
    connection = _Connection(base, key, timeout=600.0)
    try:

        def once() -> tuple[float, dict[str, Any]]:
            began = time.perf_counter()
            status, answer = connection.post("/api/v1/identify", *body)
            elapsed = time.perf_counter() - began
            if status != 200:
                raise RuntimeError(f"identify answered {status}: {answer[:500]!r}")
            return elapsed, json.loads(answer)

        first, payload = once()
        samples = [once()[0] for _ in range(repeats)]
    finally:
        connection.close()
    return {
        "first_request_ms": first * 1000.0,
        "index": payload["index"],
        "references": payload["references"],
        **_percentiles(samples),
    }


def run_service_benchmark(
    model: str | Path | None = None,
    *,
    clients: Sequence[int] = (8, 32),
    workers: Sequence[int] = (1, 2),
    seconds: float = 10.0,
    identify_sizes: Sequence[int] = (1_000, 100_000),
    writers: int = 20,
    repeats: int = 200,
    postgres_url: str | None = None,
) -> dict[str, Any]:
    model_path = Path(model) if model is not None else None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        database: Path | str = postgres_url or folder / "load.db"
        index_dir = folder / "indexes" if postgres_url else None
        key, queries = _prepare_store(database, model_path, writers)
        claims = []
        for count in workers:
            with _server(database, model_path, _free_port(), workers=count, index_dir=index_dir) as base:
                for clients_count in clients:
                    claims.append({"workers": count, **_load(base, key, queries, clients_count, seconds)})
        identify: list[dict[str, Any]] = []
        enrolled = writers * 5
        query = next(iter(queries.values()))
        for size in sorted(identify_sizes):
            # The store grows to each size in turn (the same database on either backend).
            _add_random_references(database, model_path, max(0, size - enrolled), seed=len(identify) + 1)
            enrolled = max(enrolled, size)
            began = time.perf_counter()
            with _server(database, model_path, _free_port(), index_dir=index_dir) as base:
                cold_start = time.perf_counter() - began  # the index is built from the database
                cold = _identify(base, key, query, 1)
            began = time.perf_counter()
            with _server(database, model_path, _free_port(), index_dir=index_dir) as base:
                warm_start = time.perf_counter() - began  # the index is read from its file
                row = _identify(base, key, query, repeats)
            identify.append(
                {
                    "enrolled": size,
                    "start_building_index_s": cold_start,
                    "first_request_after_build_ms": cold["first_request_ms"],
                    "restart_s": warm_start,
                    **row,
                }
            )
    return {
        "model": str(model_path) if model_path else "bundled",
        "backend": "postgresql" if postgres_url else "sqlite",
        "writers_with_real_references": writers,
        "seconds_per_load": seconds,
        "verify_claim": claims,
        "identify": identify,
        "machine": machine_description(),
        "server_threads": os.cpu_count(),
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def service_markdown(records: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """One section for one or several records (e.g. SQLite and PostgreSQL)."""
    listed = [records] if isinstance(records, dict) else list(records)
    lines: list[str] = []
    for record in listed:
        backend = record.get("backend", "sqlite")
        lines += [
            f"`inkproof serve` (uvicorn, {backend}) on loopback, clients on the same machine, {record['timestamp']}.",
            f"Machine: {describe_machine(record['machine'])}.",
            "",
            "| verify-claim | worker processes | requests/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|",
        ]
        for row in record["verify_claim"]:
            lines.append(
                f"| {row['clients']} concurrent clients | {row.get('workers', 1)} | {row['requests_per_second']:.1f} | "
                f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} |"
            )
        lines += [
            "",
            "| identify | search | start, index built from the database (s) | restart, index from its file (s) "
            "| first request after restart ms | p50 ms | p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in record["identify"]:
            lines.append(
                f"| {row['references']:,} references | {row['index']} | {row.get('start_building_index_s', 0):.1f} | "
                f"{row.get('restart_s', 0):.1f} | {row['first_request_ms']:.0f} | "
                f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip()
