"""Alembic migrations of the enrollment store, run by :func:`inkproof.store.open_database`."""
