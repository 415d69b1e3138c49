"""Alembic environment of the enrollment store.

:meth:`inkproof.store.database.Database.upgrade` passes an open connection (already inside a
locked transaction) in ``config.attributes["connection"]``; the migrations then run in that
transaction. Run by hand (``alembic -x url=...``, with ``script_location`` pointing here), a
connection is made from ``-x url=`` or ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from inkproof.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x url=... or set sqlalchemy.url")
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from inkproof.store.database import open_database

    database = open_database(_url(), migrate=False)
    try:
        with database.engine.begin() as own_connection:
            context.configure(connection=own_connection, target_metadata=target_metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
