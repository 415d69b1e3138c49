"""API keys of the service: created once in plaintext, stored as sha256 hashes, revoked by name."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inkproof.store.base import StoreBase
from inkproof.store.errors import (
    ApiKeyError,
)
from inkproof.store.results import (
    ApiKeyInfo,
)
from inkproof.store.schema import (
    ApiKey,
    utcnow,
)
from inkproof.validation import InvalidFieldError, clean_text

API_KEY_PREFIX = "ink_"


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeysMixin(StoreBase):
    """Create, check, revoke and list API keys."""

    # --- API keys --------------------------------------------------------------------------

    def create_api_key(self, name: str) -> str:
        """A new API key named ``name``. The plaintext is returned once and never stored."""
        try:
            name = clean_text(name, "an API key's name")
        except InvalidFieldError as exc:
            raise ApiKeyError(str(exc)) from None
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)

        def work(session: Session) -> None:
            if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
                raise ApiKeyError(f"an API key named {name!r} exists; revoke it or pick another name")
            session.add(ApiKey(name=name, key_prefix=key[:8], key_hash=_hash_key(key), created_at=utcnow()))

        try:
            self._write(work)
        except IntegrityError:
            raise ApiKeyError(f"an API key named {name!r} exists; revoke it or pick another name") from None
        return key

    def check_api_key(self, key: str) -> bool:
        """True when ``key`` is a known, unrevoked API key (hashes compared in constant time)."""
        if not isinstance(key, str) or not key.startswith(API_KEY_PREFIX) or not 16 <= len(key) <= 256:
            return False
        if not (key.isascii() and key.isprintable()):  # a NUL would reach PostgreSQL as an error
            return False
        digest = _hash_key(key)

        def work(session: Session) -> list[str]:
            return list(
                session.scalars(
                    select(ApiKey.key_hash).where(ApiKey.key_prefix == key[:8], ApiKey.revoked_at.is_(None))
                )
            )

        matched = False
        for stored in self._read(work):
            matched |= hmac.compare_digest(stored, digest)
        return matched

    def revoke_api_key(self, name: str) -> ApiKeyInfo:
        """Revoke the key ``name`` (revoking a revoked key changes nothing)."""

        def work(session: Session) -> ApiKeyInfo:
            row = session.scalar(select(ApiKey).where(ApiKey.name == name))
            if row is None:
                raise ApiKeyError(f"no API key named {name!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return ApiKeyInfo(row.name, row.key_prefix, row.created_at, row.revoked_at)

        return self._write(work)

    def list_api_keys(self) -> list[ApiKeyInfo]:
        def work(session: Session) -> list[ApiKeyInfo]:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.name))
            return [ApiKeyInfo(r.name, r.key_prefix, r.created_at, r.revoked_at) for r in rows]

        return self._read(work)
