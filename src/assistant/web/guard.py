"""Guards of the page's server: a body size limit, a login check with a throttle, the client
address it counts, one-sentence errors for every route, and the warning for a page exposed
without a login.  Kept apart from the page itself (``app.py``): these are about who may send
what, not about answering.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
    The address is the connection's own, or the one a trusted proxy forwarded
    (``uvicorn_trusting``): a header anyone can write must not pick the throttle's entry.
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


@contextmanager
def uvicorn_trusting(proxies: str) -> Iterator[None]:
    """While the server starts, tell uvicorn which proxies' ``X-Forwarded-For`` names the client.

    Gradio builds uvicorn's config itself, and uvicorn then trusts forwarding headers from
    loopback by default: any local process, or a client behind a proxy there, could pick the
    address the login throttle counts. ``FORWARDED_ALLOW_IPS`` is uvicorn's own way to say
    otherwise, read when Gradio builds the config; nothing listed means no proxy is trusted.
    ``Forwarded`` and ``X-Real-IP`` are never read for the client's address.
    """
    before = os.environ.get("FORWARDED_ALLOW_IPS")
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(
        part.strip() for part in proxies.split(",") if part.strip()
    )
    try:
        yield
    finally:
        if before is None:
            del os.environ["FORWARDED_ALLOW_IPS"]
        else:
            os.environ["FORWARDED_ALLOW_IPS"] = before


_NAMED_ENDPOINT = re.compile(r"/gradio_api/(?:call/v2|call|api|run)/([^/]+)")


class PublicEndpointsOnly:
    """ASGI middleware answering 404 for an API call naming an endpoint that is not public.

    Gradio serves every event handler of the page by name (``/gradio_api/call/respond``), even
    the ones marked private, and runs it with whatever it is sent; the page itself calls its
    handlers through the queue, by number, so their names need not be served at all.
    """

    def __init__(self, app: ASGIApp, public: frozenset[str]) -> None:
        self.app = app
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        named = _NAMED_ENDPOINT.search(scope["path"]) if scope["type"] == "http" else None
        if named is None or named[1] in self.public:
            await self.app(scope, receive, send)
            return
        offered = ", ".join(f"/{name}" for name in sorted(self.public)) or "nothing"
        sentence = f"There is no API endpoint named {_shown(named[1])}; the API offers {offered}."
        await JSONResponse({"detail": sentence}, status_code=404)(scope, receive, send)


class KnownStreamsOnly:
    """ASGI middleware answering 404 up front for an event stream the queue does not hold.

    ``GET /gradio_api/queue/data?session_hash=...`` and ``GET /gradio_api/call/<name>/<event>``
    find out that there is nothing to stream only once their response has begun, too late for a
    status, and the server logs a traceback. ``queue_of`` gives Gradio's queue; the event is
    looked up the way Gradio's ``simple_predict_get`` does it.
    """

    def __init__(self, app: ASGIApp, queue_of: Callable[[], Any]) -> None:
        self.app = app
        self.queue_of = queue_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self._session(scope) if scope["type"] == "http" else None
        if session is None or session in self.queue_of().pending_messages_per_session:
            await self.app(scope, receive, send)
            return
        sentence = "No answer is pending for this session or event; start one with a POST."
        await JSONResponse({"detail": sentence}, status_code=404)(scope, receive, send)

    def _session(self, scope: Scope) -> str | None:
        """The session a stream request reads, or None when the request is no stream read (or
        names no session: Gradio's own check of the query then answers)."""
        if scope["method"] != "GET":
            return None
        path = scope["path"]
        if path.endswith("/gradio_api/queue/data"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            return query["session_hash"][0] if query.get("session_hash") else None
        called = _NAMED_ENDPOINT.search(path)
        event_id = path[called.end() :].strip("/") if called else ""
        if not event_id:
            return None
        queue = self.queue_of()
        event = queue.event_ids_to_events.get(event_id)
        if event is not None:
            return event.session_hash
        pending = queue.pending_event_ids_session.items()
        return next((session for session, ids in pending if event_id in ids), event_id)


def _shown(text: str, limit: int = 80) -> str:
    """A client's text quoted in a sentence: cut short, control characters escaped."""
    quoted = repr(text[:limit])
    return quoted[:-1] + "…" + quoted[-1] if len(text) > limit else quoted


async def _http_error(request: Request, error: HTTPException) -> Response:
    """An HTTP error as one sentence: starlette's bare "Not Found" and "Method Not Allowed" say
    which path, and a detail that is not a sentence (a list, a dict) is named by its status."""
    path = _shown(request.url.path)
    if error.status_code == 404 and error.detail == "Not Found":
        sentence = f"Nothing is served at {path}."
    elif error.status_code == 405:
        sentence = f"{path} does not take {request.method} requests."
    elif isinstance(error.detail, str) and error.detail:
        sentence = error.detail
    else:
        sentence = f"The request was refused (HTTP {error.status_code})."
    refusal = HTTPException(error.status_code, sentence, error.headers)
    return await http_exception_handler(request, refusal)


async def _malformed_request(request: Request, error: RequestValidationError) -> Response:
    """A body FastAPI could not read (not JSON, or not the shape a route takes), in one sentence
    instead of pydantic's list of findings."""
    problems = error.errors()
    if not problems or any(problem.get("type") == "json_invalid" for problem in problems):
        sentence = "The request body is not valid JSON."
    else:
        first = problems[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        found = str(first.get("msg", "it is malformed")).rstrip(".").replace(". ", "; ")
        sentence = f"The request's {where or 'body'} is wrong: {found[:1].lower()}{found[1:]}."
    return JSONResponse({"detail": sentence}, status_code=422)


ONE_SENTENCE_ERRORS: dict[type[Exception], Callable[..., Any]] = {
    HTTPException: _http_error,
    RequestValidationError: _malformed_request,
}


class CompleteCallsOnly:
    """ASGI middleware refusing, in one sentence, a call that names no handler or sends it
    fewer values than it takes.

    Gradio raises on both (a ``KeyError`` for an unknown ``fn_index``, a ``ValueError`` listing
    its components for a short ``data``) and logs a traceback. ``inputs_of`` gives how many
    values a handler takes, by API name or by number, or None for no such handler. The body is
    read here (``BodyLimit`` has capped it) and handed on unchanged; a body that is not a JSON
    object holding a ``data`` list is left to the route, which refuses it in one sentence.
    """

    def __init__(self, app: ASGIApp, inputs_of: Callable[[str | int], int | None]) -> None:
        self.app = app
        self.inputs_of = inputs_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" and scope["method"] == "POST" else ""
        named = _NAMED_ENDPOINT.search(path)
        if named is None and not path.endswith("/gradio_api/queue/join"):
            await self.app(scope, receive, send)
            return
        try:
            body = await _whole_body(receive)
        except HTTPException as refusal:  # the body limit
            response = JSONResponse({"detail": refusal.detail}, status_code=refusal.status_code)
            await response(scope, receive, send)
            return
        sentence = self._refusal(named[1] if named else None, body)
        if sentence:
            await JSONResponse({"detail": sentence}, status_code=422)(scope, receive, send)
            return
        delivered = False

        async def replayed() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replayed, send)

    def _refusal(self, name: str | None, body: bytes) -> str | None:
        try:
            call = json.loads(body)
        except ValueError:
            return None
        if not isinstance(call, dict) or not isinstance(call.get("data"), list):
            return None
        handler = name if name is not None else call.get("fn_index")
        if not isinstance(handler, str | int) or isinstance(handler, bool):
            return None
        needed = self.inputs_of(handler)
        if needed is None:
            return f"There is no handler {_shown(str(handler))} to call."
        given = len(call["data"])
        if given < needed:
            return f"This call takes {needed} values in data (null for a default), not {given}."
        return None


async def _whole_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
