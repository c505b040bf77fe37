"""Guards of the page's server: a body size limit, a login check with a throttle, and the
warning for a page exposed without a login.  Kept apart from the page itself (``app.py``):
these are about who may send what, not about answering.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 1_000_000  # a question is 2,000 characters at most; history fits in the rest


def login_check(value: str | None) -> Callable[[str, str], bool] | None:
    """Gradio's login check for ``ASSISTANT_AUTH`` (``user:password``), comparing in constant
    time so that response times do not tell how much of a guess was right."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("ASSISTANT_AUTH must look like user:password")
    expected_user, expected_password = user.encode(), password.encode()

    def check(username: str, given_password: str) -> bool:
        user_matches = hmac.compare_digest(username.encode(), expected_user)
        password_matches = hmac.compare_digest(given_password.encode(), expected_password)
        return user_matches and password_matches

    return check


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit:,} bytes.")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413 before they are parsed.

    Gradio reads a whole body into memory before looking at it, so without a limit one request
    can make the server hold any amount. A declared ``Content-Length`` over the limit is refused
    at once; a body sent in chunks without one is counted as it arrives, and refused (through
    the app's own error handling, which turns the exception into the 413) once past the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            refusal = _BodyTooLarge(self.max_bytes)
            response = JSONResponse({"detail": refusal.detail}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed logins per client address, so a password cannot be guessed at speed.

    After ``allowed_failures`` tries without a success, every try from that address is refused
    for ``first_lockout`` seconds, the lockout doubling with each further failure up to
    ``max_lockout``; the right password is refused too while locked out, or a guesser would
    learn it was right. A success clears the count, and so do ``forget_after`` quiet seconds.
    A try counts as failed from the moment it starts, so a burst of simultaneous tries cannot
    slip past the count before the first answer. Used from the server's event loop only.
    """

    max_clients = 10_000  # addresses remembered at most; the oldest are forgotten first

    def __init__(
        self,
        allowed_failures: int = 5,
        first_lockout: float = 30.0,
        max_lockout: float = 900.0,
        forget_after: float = 3600.0,
    ) -> None:
        self.allowed_failures = allowed_failures
        self.first_lockout = first_lockout
        self.max_lockout = max_lockout
        self.forget_after = forget_after
        self._clients: dict[str, _Failures] = {}

    def attempt(self, client: str) -> float:
        """Seconds ``client`` must wait (the try is refused), or 0 with the try counted."""
        now = time.monotonic()
        failures = self._clients.pop(client, None) or _Failures()
        if now - failures.last > self.forget_after:
            failures = _Failures()
        self._clients[client] = failures  # the most recent last, for forgetting the oldest
        if len(self._clients) > self.max_clients:
            del self._clients[next(iter(self._clients))]
        if failures.locked_until > now:
            return failures.locked_until - now
        failures.count += 1
        failures.last = now
        if failures.count >= self.allowed_failures:
            doublings = failures.count - self.allowed_failures
            lockout = min(self.first_lockout * 2 ** min(doublings, 32), self.max_lockout)
            failures.locked_until = now + lockout
        return 0.0

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)


class ThrottledLogin:
    """ASGI middleware putting a ``LoginThrottle`` in front of Gradio's ``POST /login``.

    Gradio's login check is given only the user name and password, not who sent them, so the
    throttle sits here, where the client's address is known; a locked-out client gets 429 with
    ``Retry-After`` before its password is looked at. Gradio answers a good login with 200.
    """

    def __init__(self, app: ASGIApp, throttle: LoginThrottle) -> None:
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_login = scope["type"] == "http" and scope["method"] == "POST"
        if not is_login or not scope["path"].rstrip("/").endswith("/login"):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.throttle.attempt(client)
        if wait > 0:
            seconds = math.ceil(wait)
            response = JSONResponse(
                {"detail": f"Too many failed logins: try again in {seconds} seconds."},
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
            await response(scope, receive, send)
            return
        status = 0

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, noted)
        if status == 200:
            self.throttle.succeeded(client)


def exposure_warning(host: str, auth: str | None) -> str | None:
    """What to warn about when the page is served beyond this machine without a login, or None.

    Any address but loopback can be reached from elsewhere (``0.0.0.0`` from everywhere); the
    assistant then answers, and writes feedback for, whoever finds it.
    """
    if auth or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a host name: it may be reachable from elsewhere
        pass
    return (
        f"serving on {host} without a login: anyone who can reach this address can use the "
        "assistant and write to its feedback file; set ASSISTANT_AUTH=user:password to require "
        "a login, or serve on 127.0.0.1"
    )
