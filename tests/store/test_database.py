from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text

from inkproof.store import Database, DatabaseError, open_database, resolve_url
from inkproof.store.database import MIGRATIONS_DIR
from inkproof.store.schema import Base, Reference, StoreMeta, VerificationLog, Writer, utcnow

REPO = Path(__file__).resolve().parents[2]


def test_urls_paths_and_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = resolve_url(tmp_path / "a.db")
    assert url.drivername == "sqlite+pysqlite" and url.database == str(tmp_path / "a.db")
    assert resolve_url("postgresql://u:secret@db:5432/ink").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u@db/ink").drivername == "postgresql+psycopg"
    assert resolve_url("postgresql+psycopg://u@db/ink").drivername == "postgresql+psycopg"
    assert resolve_url("sqlite:///rel.db").database == "rel.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INKPROOF_DB", raising=False)
    assert resolve_url(None).database == str(tmp_path / "inkproof.db")
    monkeypatch.setenv("INKPROOF_DB", str(tmp_path / "env.db"))
    assert resolve_url(None).database == str(tmp_path / "env.db")
    with open_database() as db:
        assert db.current_revision() == "0006"
    assert (tmp_path / "env.db").is_file()
    with pytest.raises(DatabaseError):
        open_database("nosuchdialect://x/y")


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    with open_database(tmp_path / "deep" / "er" / "s.db") as db:
        for _ in range(3):
            with db.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_migrations_create_exactly_the_schema(database: Database) -> None:
    assert database.current_revision() == "0006"
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    database.upgrade()  # at head already: nothing to do
    assert database.current_revision() == "0006"
    # Shipped inside the package, so an installed wheel can migrate without alembic.ini.
    assert MIGRATIONS_DIR.is_relative_to(REPO / "inkproof")
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


RACE = """
import sys, time
from inkproof.store import open_database
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # everyone opens at the same moment
print(open_database(sys.argv[1]).current_revision())
"""


def test_processes_opening_a_new_database_at_once(database_url: str, tmp_path: Path) -> None:
    target = database_url if "://" in database_url else str(tmp_path / "race.db")
    start_at = str(time.time() + 1.5)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, target, start_at],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out.strip() == "0006"
    with open_database(target) as db, db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1


def test_a_newer_schema_is_refused(database_url: str) -> None:
    with open_database(database_url) as db, db.session() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseError, match="newer than this inkproof"):
        open_database(database_url)


def test_sessions_commit_or_roll_back(database: Database) -> None:
    def fail() -> None:
        with database.session() as session:
            session.add(StoreMeta(key="a", value="1"))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    with database.session() as session:
        session.add(StoreMeta(key="b", value="2"))
    with database.session(write=False) as session:
        assert session.scalars(select(StoreMeta.key)).all() == ["b"]


def test_datetimes_are_utc_aware_and_foreign_keys_act(database: Database) -> None:
    moment = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with database.session() as session:
        writer_id = session.execute(
            insert(Writer).values(external_id="w", display_name="W", created_at=moment).returning(Writer.id)
        ).scalar_one()
        session.add(
            Reference(
                writer_id=writer_id,
                image_sha256="0" * 64,
                image_png=b"png",
                embedding=b"\0" * 8,
                embedding_dim=2,
                model_tag="m",
                preprocess_version="1",
                quality_score=1.0,
                created_at=utcnow(),
            )
        )
        session.add(
            VerificationLog(
                query_sha256="1" * 64,
                claimed_external_id="w",
                writer_id=writer_id,
                reference_scores=[{"reference_id": 1, "score": 0.5}],
                fused_score=0.5,
                threshold=0.6,
                reject_threshold=0.4,
                decision="review",
                status="pending_review",
                model_tag="m",
                created_at=utcnow(),
            )
        )
    with database.session(write=False) as session:
        stored = session.scalars(select(Writer.created_at)).one()
        assert stored == moment and stored.tzinfo == dt.UTC

    def naive() -> None:
        with database.session() as session:
            session.add(StoreMeta(key="x", value="y"))
            naive_time = dt.datetime(2024, 1, 1)
            session.execute(insert(Writer).values(external_id="n", display_name="", created_at=naive_time))

    with pytest.raises(Exception, match="naive"):
        naive()
    # Deleting the writer row alone: references go with it, logs stay with writer_id NULL.
    with database.session() as session:
        session.execute(text("DELETE FROM writers"))
    with database.session(write=False) as session:
        assert session.scalar(select(Reference.id)) is None
        log = session.scalars(select(VerificationLog)).one()
        assert log.writer_id is None and log.claimed_external_id == "w"
        assert log.reference_scores == [{"reference_id": 1, "score": 0.5}]
