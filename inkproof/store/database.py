"""Opening the store database: URL resolution, connection set-up and schema migrations.

SQLite (a file, the default) and PostgreSQL (``postgresql+psycopg://``) are supported. On SQLite
every connection runs in WAL mode (readers never block the writer), with foreign keys on and a
busy timeout, and transactions are begun explicitly: write sessions with ``BEGIN IMMEDIATE`` so
that a read-then-write sequence can never fail half-way with "database is locked" -- concurrent
writers queue on the lock instead. Opening a database brings its schema to the latest Alembic
revision; two processes opening one database at once are serialised by a lock (the SQLite write
lock, or a PostgreSQL advisory lock), and the second finds nothing left to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool, StaticPool

from inkproof.errors import InkproofError

DB_ENV = "INKPROOF_DB"
DEFAULT_DB_FILE = "inkproof.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
POOL_SIZE = 8
POOL_OVERFLOW = 24
POOL_TIMEOUT_S = 60.0
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock held while migrating (any constant shared by all processes).
_PG_MIGRATION_LOCK = 0x696E6B70  # "inkp"
_WRITE_OPTION = "inkproof_write"


class StoreError(InkproofError):
    """Base class of the enrollment store's errors."""


class DatabaseError(StoreError):
    """The store database cannot be opened or brought to the current schema."""


def resolve_url(url: str | os.PathLike[str] | URL | None = None) -> URL:
    """The SQLAlchemy URL of ``url``: a URL, or a file path for SQLite.

    ``None`` means ``$INKPROOF_DB`` or ``./inkproof.db``; ``postgresql://`` URLs use psycopg 3.
    """
    if isinstance(url, URL):
        parsed = url
    else:
        value = os.fspath(url) if url is not None else (os.environ.get(DB_ENV) or DEFAULT_DB_FILE)
        if "://" not in value:
            return URL.create("sqlite+pysqlite", database=str(Path(value).expanduser().resolve()))
        try:
            parsed = make_url(value)
        except Exception as exc:  # sqlalchemy raises ArgumentError / ValueError for malformed URLs
            raise DatabaseError(f"not a database URL: {value!r} ({exc})") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook (below) emit BEGIN, instead of pysqlite's implicit,
    # statement-dependent transactions (which also break SAVEPOINT).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL loses no committed transaction when a process dies (only on power loss).
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    write = bool(connection.get_execution_options().get(_WRITE_OPTION))
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_store_engine(url: URL, *, echo: bool = False) -> Engine:
    """An engine for ``url`` that many threads can share."""
    if url.get_backend_name() == "sqlite":
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        if _is_memory(url):
            # One shared in-memory database: for tests and single-threaded tools only.
            engine = create_engine(url, echo=echo, poolclass=StaticPool, connect_args=connect_args)
        else:
            assert url.database is not None
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                echo=echo,
                poolclass=QueuePool,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
                pool_timeout=POOL_TIMEOUT_S,
                connect_args=connect_args,
            )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
    )


def alembic_config(connection: Any = None) -> Any:
    """An Alembic ``Config`` for the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    # Config values are %-interpolated: escape the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class Database:
    """An engine plus session factories. Share one per process; it is thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._write_sessions = sessionmaker(bind=self._write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error.

        ``write=False`` is for read-only work: on SQLite it does not take the write lock (the
        reads still see one consistent snapshot).
        """
        factory = self._write_sessions if write else self._read_sessions
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self) -> None:
        """Bring the schema to the latest revision (idempotent; safe across processes)."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(alembic_config())
        heads = set(script.get_heads())
        known = {revision.revision for revision in script.walk_revisions()}
        with self.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        unknown = current - known
        if unknown:
            raise DatabaseError(
                f"{self.url} has schema revision {', '.join(sorted(unknown))}, newer than this "
                "inkproof knows; upgrade inkproof to open it"
            )
        if current == heads:
            return
        # The lock makes a second process wait, then see the new revision and do nothing.
        with self._write_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            command.upgrade(alembic_config(connection), "head")

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (0600, whatever the umask): it holds
    reference signatures and API key hashes. Existing files keep their mode; SQLite's -wal and
    -journal files copy the main file's permissions."""
    if path.exists() or not path.parent.is_dir():
        return  # an existing store, or a folder that is missing: SQLite reports that itself
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # created meanwhile by another process
        pass
    except OSError as exc:
        raise DatabaseError(f"cannot create {path}: {exc.strerror}") from None


def open_database(
    url: str | os.PathLike[str] | URL | None = None, *, migrate: bool = True, echo: bool = False
) -> Database:
    """Open (and create or migrate) the store at ``url``; see :func:`resolve_url`."""
    resolved = resolve_url(url)
    if resolved.get_backend_name() == "sqlite" and not _is_memory(resolved):
        _create_private(Path(str(resolved.database)))
    try:
        engine = create_store_engine(resolved, echo=echo)
    except Exception as exc:  # missing driver, bad options: say which URL
        raise DatabaseError(f"cannot open {resolved.render_as_string(hide_password=True)}: {exc}") from exc
    database = Database(engine)
    if migrate:
        try:
            database.upgrade()
        except OperationalError as exc:
            database.dispose()
            raise DatabaseError(f"cannot open {database.url}: {exc.orig or exc}") from exc
        except BaseException:
            database.dispose()
            raise
    return database


__all__ = [
    "DB_ENV",
    "DEFAULT_DB_FILE",
    "MIGRATIONS_DIR",
    "Database",
    "DatabaseError",
    "StoreError",
    "alembic_config",
    "create_store_engine",
    "open_database",
    "resolve_url",
]
