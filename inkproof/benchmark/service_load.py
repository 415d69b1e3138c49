"""A bounded load test of the REST service over loopback.

A real ``inkproof serve`` process (uvicorn) answers; the clients run in this process on the same
machine, so the numbers describe the whole box, not the server alone. Measured:

* verify-claim with 8 and 32 concurrent clients: requests per second, p50 and p99 latency;
* identify latency with 1,000 and 100,000 enrolled embeddings (random unit vectors written
  straight into the store besides a few real writers; the first identify, which builds the
  index, is reported separately).
"""

from __future__ import annotations

import io
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


@contextmanager
def _server(database: Path, model: Path | None, port: int) -> Any:
    command = [sys.executable, "-m", "inkproof", "serve", "--db", str(database), "--port", str(port)]
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


def _prepare_store(database: Path, model: Path | None, writers: int) -> tuple[str, dict[str, bytes]]:
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


def _add_random_references(database: Path, model: Path | None, count: int, seed: int = 0) -> None:
    """``count`` references with random unit embeddings, one per synthetic writer, in bulk."""
    from sqlalchemy import insert

    from inkproof.store import open_database
    from inkproof.store.repository import model_tag_of
    from inkproof.store.schema import Reference, Writer, utcnow
    from inkproof.verifier import Verifier

    verifier = Verifier(model)
    tag, dim = model_tag_of(verifier.card), verifier.card.embedding_dim
    rng = np.random.default_rng(seed)
    database_handle = open_database(database)
    now = utcnow()
    with database_handle.session() as session:
        for start in range(0, count, 10_000):
            block = range(start, min(count, start + 10_000))
            session.execute(
                insert(Writer), [{"external_id": f"bulk-{i:06d}", "display_name": "", "created_at": now} for i in block]
            )
            ids = dict(
                session.execute(
                    Writer.__table__.select()
                    .with_only_columns(Writer.external_id, Writer.id)
                    .where(Writer.external_id.like("bulk-%"))
                ).all()
            )
            vectors = rng.standard_normal((len(block), dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            session.execute(
                insert(Reference),
                [
                    {
                        "writer_id": ids[f"bulk-{i:06d}"],
                        "image_sha256": f"{i:064x}",
                        "image_png": b"",
                        "embedding": vector.astype("<f4").tobytes(),
                        "embedding_dim": dim,
                        "model_tag": tag,
                        "preprocess_version": verifier.card.preprocess_version,
                        "quality_score": 1.0,
                        "created_at": now,
                    }
                    for i, vector in zip(block, vectors, strict=True)
                ],
            )
    database_handle.dispose()
    verifier.close()


def _load(base: str, key: str, queries: dict[str, bytes], clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    writers = list(queries)

    def worker(offset: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60.0) as client:
            turn = offset
            while time.monotonic() < stop:
                writer = writers[turn % len(writers)]
                turn += 1
                began = time.perf_counter()
                response = client.post(
                    f"/api/v1/writers/{writer}/verify", files={"query": ("q.png", queries[writer], "image/png")}
                )
                elapsed = time.perf_counter() - began
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        errors += 1

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
    import httpx

    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=600.0) as client:

        def once() -> tuple[float, dict[str, Any]]:
            began = time.perf_counter()
            response = client.post(
                "/api/v1/identify", files={"query": ("q.png", query, "image/png")}, data={"top": "5"}
            )
            response.raise_for_status()
            return time.perf_counter() - began, response.json()

        first, payload = once()
        samples = [once()[0] for _ in range(repeats)]
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
    seconds: float = 10.0,
    identify_sizes: Sequence[int] = (1_000, 100_000),
    writers: int = 20,
    repeats: int = 30,
) -> dict[str, Any]:
    model_path = Path(model) if model is not None else None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        database = folder / "load.db"
        key, queries = _prepare_store(database, model_path, writers)
        claims = []
        with _server(database, model_path, _free_port()) as base:
            for count in clients:
                claims.append(_load(base, key, queries, count, seconds))
        identify = []
        for size in identify_sizes:
            sized = folder / f"identify-{size}.db"
            sized.write_bytes(database.read_bytes())
            _add_random_references(sized, model_path, max(0, size - writers * 5))
            with _server(sized, model_path, _free_port()) as base:
                identify.append({"enrolled": size, **_identify(base, key, next(iter(queries.values())), repeats)})
    return {
        "model": str(model_path) if model_path else "bundled",
        "writers_with_real_references": writers,
        "seconds_per_load": seconds,
        "verify_claim": claims,
        "identify": identify,
        "machine": machine_description(),
        "server_threads": os.cpu_count(),
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def service_markdown(record: dict[str, Any]) -> str:
    lines = [
        f"`inkproof serve` (uvicorn, SQLite) on loopback, clients on the same machine, {record['timestamp']}.",
        f"Machine: {describe_machine(record['machine'])}.",
        "",
        "| verify-claim | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for row in record["verify_claim"]:
        lines.append(
            f"| {row['clients']} concurrent clients | {row['requests_per_second']:.1f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} |"
        )
    lines += [
        "",
        "| identify | search | first request ms (builds the index) | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for row in record["identify"]:
        lines.append(
            f"| {row['references']:,} references | {row['index']} | {row['first_request_ms']:.0f} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    return "\n".join(lines)
