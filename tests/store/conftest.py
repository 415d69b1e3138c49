"""Fixtures of the enrollment-store tests: real SQLite files, a real PostgreSQL server, models.

``postgres_url`` starts a throw-away PostgreSQL cluster (initdb + pg_ctl) once per session and
hands each test a fresh database in it. It skips, with the reason, only when the server binaries
or the psycopg driver are missing or cannot be run. As root (initdb refuses root) the server runs
as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from inkproof.store import Database, SignatureStore, open_database
from inkproof.verifier import Verifier

BACKENDS = ["sqlite", "postgres"]


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: p.split("/")[4])
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    prefix: list[str] = []
    # A RAM disk where there is one: faster, and dropping the cluster does not wait for the disk
    # (on a filesystem mounted with "discard", deleting its files takes seconds).
    shm = Path("/dev/shm")
    in_memory = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 << 30
    folder = Path(tempfile.mkdtemp(prefix="inkproof-pg-", dir=shm if in_memory else None))
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root and no 'postgres' system user to run the server as")
        os.chown(folder, account.pw_uid, account.pw_gid)
        runuser = shutil.which("runuser")
        if runuser is None:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root and no runuser to start the server as 'postgres'")
        prefix = [runuser, "-u", "postgres", "--"]
    data = folder / "data"
    port = _free_port()

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(prefix + command, capture_output=True, text=True, timeout=120, check=False)

    created = run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
    if created.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed: {created.stderr.strip()[-500:]}")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    started = run([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start"])
    if started.returncode != 0:
        log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {started.stderr.strip()[-300:]} {log[-300:]}")
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database(f"inkproof_{next(_database_numbers)}")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store database: a SQLite file, or a PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "store.db")


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    yield db
    db.dispose()


# --- models -------------------------------------------------------------------------------------


def model_copy(
    card_path: Path,
    folder: Path,
    *,
    name: str | None = None,
    thresholds: dict[str, float] | None = None,
    perturb_seed: int | None = None,
) -> Path:
    """A copy of an exported model with another name, other thresholds, or (``perturb_seed``)
    other embedder weights -- a genuinely different model."""
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads(card_path.read_text())
    for file_name in card["files"].values():
        shutil.copy(card_path.parent / file_name, folder / file_name)
    if name is not None:
        card["name"] = name
    if thresholds is not None:
        card["thresholds"] = {**card["thresholds"], **thresholds}
    if perturb_seed is not None:
        import hashlib

        onnx = pytest.importorskip("onnx")
        from onnx import numpy_helper

        embedder = folder / card["files"]["embedder"]
        model = onnx.load(str(embedder))
        rng = np.random.default_rng(perturb_seed)
        for i, initializer in enumerate(model.graph.initializer):
            values = numpy_helper.to_array(initializer)
            if values.dtype == np.float32 and values.size > 16:
                noisy = values + rng.normal(0.0, 0.5 * float(values.std() or 1.0), values.shape).astype(np.float32)
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(noisy, initializer.name))
        onnx.save(model, str(embedder))
        card["sha256"][embedder.name] = hashlib.sha256(embedder.read_bytes()).hexdigest()
    target = folder / "model.json"
    target.write_text(json.dumps(card, indent=2))
    return target


def pixel_model(card_path: Path, folder: Path, *, name: str = "pixelgrid", grid: int = 6, head: str = "cosine") -> Path:
    """A hand-built ONNX model in the exported layout (embedder + head + card): the embedding is
    the mean-centred, L2-normalised grid of ``grid`` x ``grid`` block averages of the model input.

    The tiny trained test model maps every signature to nearly the same embedding, so tests that
    need scores that tell writers apart (identification, reindexing) use this one: the same image
    scores 1, other writers clearly less. It runs through the real engine like any export.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads(card_path.read_text())
    height, width = card["preprocess"]["height"], card["preprocess"]["width"]
    dim = (height // grid) * (width // grid)
    opset = [helper.make_opsetid("", 18)]
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    embedder = helper.make_graph(
        [
            helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[grid, grid], strides=[grid, grid]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("ReduceMean", ["flat", "axes"], ["mean"], keepdims=1),
            helper.make_node("Sub", ["flat", "mean"], ["centred"]),
            helper.make_node("LpNormalization", ["centred"], ["embeddings"], axis=1, p=2),
        ],
        "pixelgrid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 1, height, width])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", dim])],
        [axes],
    )
    pair_head = helper.make_graph(
        [
            helper.make_node("Mul", ["reference", "query"], ["product"]),
            helper.make_node("ReduceSum", ["product", "axes"], ["scores"], keepdims=0),
        ],
        "cosine_head",
        [
            helper.make_tensor_value_info("reference", TensorProto.FLOAT, ["batch", dim]),
            helper.make_tensor_value_info("query", TensorProto.FLOAT, ["batch", dim]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch"])],
        [axes],
    )
    import hashlib

    digests = {}
    for file_name, graph in (("pixel.onnx", embedder), ("pixel.head.onnx", pair_head)):
        model = helper.make_model(graph, opset_imports=opset)
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(folder / file_name))
        digests[file_name] = hashlib.sha256((folder / file_name).read_bytes()).hexdigest()
    card.update(
        name=name,
        head=head,
        embedding_dim=dim,
        files={"embedder": "pixel.onnx", "head": "pixel.head.onnx"},
        sha256=digests,
        thresholds={**card["thresholds"], **STORE_THRESHOLDS},
    )
    target = folder / "model.json"
    target.write_text(json.dumps(card, indent=2))
    return target


@pytest.fixture(scope="session")
def pixel_card(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pixel_model(onnx_model, tmp_path_factory.mktemp("pixel-model"))


@pytest.fixture(scope="session")
def pixel_verifier(pixel_card: Path) -> Iterator[Verifier]:
    with Verifier(pixel_card, device="cpu") as loaded:
        yield loaded


#: Thresholds of the store tests' model: the tiny test model scores everything close to 1, so
#: these are chosen far apart to get every decision on purpose (see ``thresholds`` below).
STORE_THRESHOLDS = {"eer": -1.0, "far_1": -1.0, "far_0_1": -1.0}


@pytest.fixture(scope="session")
def store_model(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_copy(onnx_model, tmp_path_factory.mktemp("store-model"), thresholds=STORE_THRESHOLDS)


@pytest.fixture(scope="session")
def verifier(store_model: Path) -> Iterator[Verifier]:
    with Verifier(store_model, device="cpu") as loaded:
        yield loaded


@pytest.fixture
def store(database: Database, verifier: Verifier) -> SignatureStore:
    return SignatureStore(database, verifier)


# --- images -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signatures(synthetic_root: Path) -> Callable[[str, str], list[Path]]:
    """``signatures("W003", "genuine")``: the sorted image paths of one writer and kind."""

    def files(writer: str, kind: str = "genuine") -> list[Path]:
        return sorted((synthetic_root / writer / kind).glob("*.png"))

    return files
