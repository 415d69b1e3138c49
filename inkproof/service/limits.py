"""The request guard: a pure ASGI middleware in front of FastAPI.

It runs before any body byte is read, so that

- a request without a valid API key is answered 401 from its headers alone (FastAPI's multipart
  parser, which spools uploads to a temporary file, never sees it);
- a body larger than its endpoint allows is refused with 413: at once when Content-Length says
  so, and while streaming otherwise (chunked uploads), never after the whole body was stored;
- every response carries the security headers (CSP, no framing, nosniff, no referrer).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from inkproof.service.errors import error_body

log = logging.getLogger("inkproof.service")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The UI and the local API docs need nothing from another origin; inline styles are used by the
# docs pages only (the UI's own CSS is a file).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


# /docs and /redoc (only with settings.api_docs) load Swagger UI / ReDoc from jsDelivr and start
# them with an inline script; they hold no API key (it is typed into Swagger's own dialog).
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    b"worker-src blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


@dataclass(frozen=True)
class BodyLimits:
    """Byte limits of a request body by path: ``uploads`` for signature endpoints, ``document``
    for the document report, ``small`` for everything else (JSON bodies)."""

    uploads: int
    document: int
    small: int = 64 * 1024

    def for_path(self, method: str, path: str) -> int:
        if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return 0 if method != "DELETE" else self.small
        if path.endswith("/documents/report"):
            return self.document
        if _UPLOAD_PATHS.search(path):
            return self.uploads
        return self.small


# verify, identify, a writer's references and a writer's claim take images.
_UPLOAD_PATHS = re.compile(r"/api/v1/(verify|identify|writers/[^/]+/(references|verify))$")


class _BodyTooLarge(Exception):
    pass


#: Seconds a key the database accepted is trusted without asking it again. A revoked key keeps
#: working in a running process for at most this long; in exchange a request skips a database
#: query and a thread hop (about 1-2 ms of a 15 ms identify on 2 loaded cores).
KEY_CACHE_S = 5.0


class AcceptedKeys:
    """Keys the database accepted in the last ``seconds``, by sha256 (the keys themselves are not
    kept). Refused keys are never remembered, so guessing cannot fill it or lock anyone out."""

    def __init__(self, seconds: float, capacity: int = 1024) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self._until: dict[bytes, float] = {}

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()

    def holds(self, key: str) -> bool:
        if self.seconds <= 0:
            return False
        until = self._until.get(self._digest(key))
        return until is not None and time.monotonic() < until

    def add(self, key: str) -> None:
        if self.seconds <= 0:
            return
        now = time.monotonic()
        if len(self._until) >= self.capacity:
            self._until = {d: t for d, t in self._until.items() if t > now}
            if len(self._until) >= self.capacity:
                self._until.clear()
        self._until[self._digest(key)] = now + self.seconds


class RequestGuard:
    """Authenticate from headers and bound the body before the app reads it.

    ``check_key`` is called in a worker thread (it queries the database); ``None`` switches
    authentication off (``--no-auth``). Paths under ``protected_prefix`` need a key, except the
    ``public`` ones.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: BodyLimits,
        check_key: Callable[[str], bool] | None,
        protected_prefix: str = "/api/",
        public: frozenset[str] = frozenset(),
        protect_docs: bool = False,
        key_cache_s: float = KEY_CACHE_S,
    ) -> None:
        self.app = app
        self.limits = limits
        self.check_key = check_key
        self.protected_prefix = protected_prefix
        self.public = public
        self.protect_docs = protect_docs
        self.accepted = AcceptedKeys(key_cache_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send, docs=str(scope.get("path", "")) in DOCS_PATHS)
        method = str(scope.get("method", "GET")).upper()
        path = str(scope.get("path", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}

        if self._needs_key(path) and not await self._authorised(headers):
            await _answer(send, 401, "unauthorized", "a valid API key is required (X-API-Key header)")
            return

        limit = self.limits.for_path(method, path)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "bad_request", "invalid Content-Length")
                return
            if int(declared) > limit:
                await _answer(send, 413, "payload_too_large", f"the request body exceeds {limit} bytes")
                return

        received = 0
        exceeded = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge  # stops the multipart parser before it stores more
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app turned the aborted read into some error: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _answer(send, 413, "payload_too_large", f"the request body exceeds {limit} bytes")
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await _answer(send, 413, "payload_too_large", f"the request body exceeds {limit} bytes")
        except Exception:
            if not exceeded:
                raise
            if not started:
                await _answer(send, 413, "payload_too_large", f"the request body exceeds {limit} bytes")

    def _needs_key(self, path: str) -> bool:
        if self.check_key is None:
            return False
        if path in self.public:
            return False
        if path.startswith(self.protected_prefix):
            return True
        return self.protect_docs and path in ("/docs", "/redoc", "/openapi.json")

    async def _authorised(self, headers: dict[str, str]) -> bool:
        key = headers.get("x-api-key")
        authorization = headers.get("authorization", "")
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key or self.check_key is None:
            return False
        if self.accepted.holds(key):
            return True
        check = self.check_key
        try:
            valid = bool(await anyio.to_thread.run_sync(check, key))
        except Exception:  # a database that cannot answer is not a reason to let anyone in
            log.exception("API key check failed")
            return False
        if valid:
            self.accepted.add(key)
        return valid


def _with_security_headers(send: Send, *, docs: bool = False) -> Send:
    headers = [(n, DOCS_CSP if docs and n == b"content-security-policy" else v) for n, v in SECURITY_HEADERS]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", ())}
            extra = [(name, value) for name, value in headers if name not in present]
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return wrapped


async def _answer(
    send: Send, status: int, kind: str, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = error_body(kind, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the unread body is not drained: this connection is done
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
