"""How a loaded module becomes something to serve: its routes or plain handler, schedules and
hooks, the invocation context around each request, what a returned value means as a response,
and what a raised exception becomes. Used by the runtime and by :mod:`pilotlight.testing`, so a
function behaves the same under test as deployed.

``async def`` functions run on the event loop; plain ``def`` functions run in a thread pool (with
the invocation's context copied in), so a blocking call in one never stalls the others, nor the
loop that answers the watchdog's pings.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as _datetime
import decimal
import functools
import inspect
import io
import json
import os
import re
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Any

from . import _scope
from ._http import Headers, RequestHead, check_response_header, final_status
from .context import FunctionInfo, InvocationContext, PreStopInfo, create_context
from .decorators import Registrations, RouteEntry, ScheduleEntry
from .logging import Logger, logger as default_logger
from .server import ResponseError
from .web import HTTPError, MethodNotAllowedError, NotFoundError, Request, Response

__all__ = [
    "FunctionShapeError",
    "ServedFunction",
    "serve_module",
    "serve_callable",
    "describe_error",
    "to_reply",
    "executor",
    "in_thread",
    "stuck_threads",
    "STUCK_AFTER_S",
    "SCHEDULE_PATH",
    "HANDLER_THREADS",
]

#: The path prefix a connector can call to run a schedule by name.
SCHEDULE_PATH = "/_pilotlight/schedule/"
#: Most synchronous handlers running at once (threads are started as needed, not up front).
HANDLER_THREADS = 128

Reply = tuple[int, list[tuple[str, str]], Any]

#: How long work may go on in a thread after its request was cancelled before it counts as stuck.
STUCK_AFTER_S = 10.0

_executor: ThreadPoolExecutor | None = None
#: Work still running in a thread whose request was cancelled, and when it was cancelled.
_abandoned: dict[Future[Any], float] = {}


def executor() -> ThreadPoolExecutor:
    """The pool synchronous handlers, hooks and iterators run in."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="pilotlight-handler")
    return _executor


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Runs ``fn(*args)`` in the pool. Python cannot stop a thread, so work whose request is
    cancelled while it runs is remembered until it ends: see :func:`stuck_threads`."""
    future = executor().submit(fn, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if not future.cancel():
            _abandoned[future] = time.monotonic()
            future.add_done_callback(_forget)
        raise


def _forget(future: Future[Any]) -> None:
    _abandoned.pop(future, None)


def stuck_threads() -> int:
    """How many threads still run work whose request was cancelled over ``STUCK_AFTER_S`` ago."""
    limit = time.monotonic() - STUCK_AFTER_S
    return sum(1 for since in list(_abandoned.values()) if since < limit)


class FunctionShapeError(Exception):
    """A module that cannot be served, for a reason its author can fix; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - a callable object's own __call__
    return call is not None and not inspect.isfunction(fn) and (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call))


#: Parameter names that ask for a value by its role, whatever their position.
_ROLE_NAMES = {"request": ("request", "req"), "context": ("context", "ctx"), "info": ("info",)}
#: Annotations that ask for a value by its role.
_ROLE_TYPES = {"request": "Request", "context": "InvocationContext", "info": "PreStopInfo"}


def _annotation_role(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    name = name.rsplit(".", 1)[-1]
    return next((role for role, type_name in _ROLE_TYPES.items() if name == type_name), None)


class _Call:
    """How to call one user function: on the loop when async, in the pool when not, with what it
    asks for. A parameter gets the request, the context (or a pre-stop hook's info) when it is
    named for it (``request``/``req``, ``context``/``ctx``, ``info``) or annotated with its type,
    a route's ``{placeholder}`` when named like it; the remaining positional parameters take the
    remaining values in order — so ``def handler(request, context)``, ``def get(ctx, item_id)``
    and ``def handler(r)`` all work."""

    __slots__ = ("fn", "is_async", "_parameters", "_var_positional", "_var_keyword")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.is_async = _is_async_callable(fn)
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            parameters = []
            self._var_positional = True
        else:
            self._var_positional = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        self._var_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters)
        self._parameters = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", None) or repr(self.fn)

    def arguments(self, roles: tuple[tuple[str, Any], ...], named: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        if not self._parameters:
            return ([value for _, value in roles] if self._var_positional else []), (dict(named) if self._var_keyword else {})
        values: dict[str, Any] = {}
        left = list(roles)
        for p in self._parameters:
            if p.name in named and p.kind is not p.POSITIONAL_ONLY:
                values[p.name] = named[p.name]
                continue
            role = _annotation_role(p.annotation)
            for i, (candidate, value) in enumerate(left):
                if candidate == role or p.name in _ROLE_NAMES.get(candidate, ()):
                    values[p.name] = value
                    del left[i]
                    break
        for p in self._parameters:
            if not left:
                break
            if p.name not in values and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                values[p.name] = left.pop(0)[1]
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in self._parameters:
            if p.name not in values:
                if p.kind is p.POSITIONAL_ONLY:
                    break
                continue
            if p.kind is p.POSITIONAL_ONLY:
                args.append(values[p.name])
            else:
                kwargs[p.name] = values[p.name]
        if self._var_keyword:
            for name, value in named.items():
                kwargs.setdefault(name, value)
        return args, kwargs

    async def __call__(self, roles: tuple[tuple[str, Any], ...] = (), named: dict[str, Any] | None = None) -> Any:
        args, kwargs = self.arguments(roles, named or {})
        if self.is_async:
            result = self.fn(*args, **kwargs)
        else:
            context = contextvars.copy_context()
            result = await in_thread(functools.partial(context.run, self.fn, *args, **kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result


# -- values to responses ------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, (_datetime.datetime, _datetime.date, _datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False).encode()


def _is_stream(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray, memoryview, dict, list, tuple)):
        return False
    return hasattr(value, "__aiter__") or hasattr(value, "__next__") or isinstance(value, io.IOBase)


def _chunk_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    if isinstance(chunk, (dict, list)):
        # Objects stream as JSON lines (NDJSON).
        return _json_bytes(chunk) + b"\n"
    raise TypeError(f"a streamed chunk must be str, bytes or a dict/list (a JSON line), got {type(chunk).__name__}")


_DONE = object()


def _blocks(stream: io.IOBase) -> Iterable[Any]:
    read = getattr(stream, "read")
    while True:
        block = read(64 * 1024)
        if not block:
            return
        yield block


async def _chunks(body: Any, context: contextvars.Context) -> AsyncIterator[bytes]:
    """Any iterator, sync or async, as an async iterator of bytes; sync ``next`` runs in the pool."""
    if hasattr(body, "__aiter__"):
        iterator = body.__aiter__()
        try:
            async for chunk in iterator:
                yield _chunk_bytes(chunk)
        finally:
            await _aclose(iterator)
        return
    loop = asyncio.get_running_loop()
    pool = executor()
    iterator = iter(_blocks(body)) if isinstance(body, io.IOBase) else body
    try:
        while True:
            chunk = await in_thread(context.run, next, iterator, _DONE)
            if chunk is _DONE:
                return
            yield _chunk_bytes(chunk)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            try:
                await loop.run_in_executor(pool, close)
            except Exception:  # noqa: BLE001 - a generator still running in its thread cannot be closed
                pass


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001 - best effort
            pass


async def _primed(first: bytes, rest: AsyncIterator[bytes], logger: Logger) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    except (GeneratorExit, asyncio.CancelledError):
        raise
    except Exception as error:
        logger.error(f"the response stream failed: {error}", err=error)
        raise
    finally:
        await _aclose(rest)


async def to_reply(result: Any, logger: Logger = default_logger) -> Reply:
    """What a function returned, as a response.

    ``Response`` → as given; ``(body, status)`` or ``(body, status, headers)``; None → 204;
    str → text/plain; bytes → application/octet-stream; an iterator, generator, async iterator or
    binary file → streamed (application/octet-stream); anything else → JSON. A stream's first chunk
    is produced before the status is sent, so a generator that fails at once still gets its error
    status.
    """
    status = 200
    headers = Headers()
    body = result
    explicit = False
    if isinstance(result, Response):
        status, headers, body, explicit = result.status, Headers(result.headers), result.body, True
    elif isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[1], int) and not isinstance(result[1], bool):
        body, status, explicit = result[0], result[1], True
        if len(result) == 3:
            headers = Headers(result[2])
    _check_reply(status, headers)
    if body is None:
        return (status if explicit else 204), headers.items(), None
    if isinstance(body, str):
        data = body.encode()
        content_type = "text/plain; charset=utf-8"
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        content_type = "application/octet-stream"
    elif _is_stream(body):
        headers.setdefault("content-type", "application/octet-stream")
        chunks = _chunks(body, contextvars.copy_context())
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            return status, headers.items(), b""
        except BaseException:
            await _aclose(chunks)
            raise
        return status, headers.items(), _primed(first, chunks, logger)
    else:
        data = _json_bytes(body)
        content_type = "application/json; charset=utf-8"
    headers.setdefault("content-type", content_type)
    return status, headers.items(), data


def _check_reply(status: Any, headers: Headers) -> None:
    """Refuses what a function answered that HTTP cannot carry, before any of it is sent: a
    status that is not a final one (1xx, 42, 1000, "abc": a client would wait on for the final
    answer), a header that is not a token or whose value holds CR, LF or another control character.

    :raises ResponseError: answered as any failure: a 500, logged with what was wrong.
    """
    try:
        final_status(status)
        for name, value in headers.items():
            check_response_header(name, value)
    except ValueError as error:
        raise ResponseError(str(error)) from None


def _status_of(error: BaseException) -> int:
    if isinstance(error, HTTPError):
        status: Any = error.status
    else:
        status = getattr(error, "status", None)
        if not isinstance(status, int):
            status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return 500


def describe_error(error: BaseException, logger: Logger = default_logger) -> Reply:
    """The response for a raised exception: HTTP errors keep their status and message; anything
    else is a 500 whose body never carries the message or traceback (the log does, at level
    error) unless ``PILOTLIGHT_DEBUG=true``. An HTTP error whose headers cannot be sent is that
    500 too."""
    if isinstance(error, HTTPError) and error.headers:
        try:
            _check_reply(error.status, error.headers)
        except ResponseError as invalid:
            invalid.__cause__ = error
            error = invalid
    status = _status_of(error)
    if status >= 500:
        logger.error(f"function failed: {error}", err=error)
    debug = os.environ.get("PILOTLIGHT_DEBUG") == "true"
    hide = status >= 500 and not debug
    is_http = isinstance(error, HTTPError)
    body: dict[str, Any] = {
        "name": "InternalServerError" if hide else (error.name if is_http else type(error).__name__),  # type: ignore[union-attr]
        "message": "the function failed; see its logs" if hide else (error.message if is_http else str(error)),  # type: ignore[union-attr]
    }
    errors = getattr(error, "errors", None)
    if not hide and isinstance(errors, list):
        body["errors"] = errors
    if debug:
        body["stack"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    headers = Headers(error.headers) if is_http else Headers()  # type: ignore[union-attr]
    headers.set("content-type", "application/json; charset=utf-8")
    try:
        data = _json_bytes(body)
    except (TypeError, ValueError):
        body.pop("errors", None)
        data = _json_bytes(body)
    return status, headers.items(), data


# -- routing ------------------------------------------------------------------------------------


def _normalize(path: str) -> str:
    path = re.sub(r"/{2,}", "/", path)
    return path.rstrip("/") or "/"


class _Route:
    __slots__ = ("methods", "path", "pattern", "call")

    def __init__(self, entry: RouteEntry) -> None:
        self.methods = entry.methods
        self.path = _normalize(entry.path)
        parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", self.path)
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        self.pattern = re.compile(f"^{regex}$")
        self.call = _Call(entry.fn)

    def allows(self, method: str) -> bool:
        return "*" in self.methods or method in self.methods or (method == "HEAD" and "GET" in self.methods)


class _Router:
    def __init__(self, entries: Iterable[RouteEntry]) -> None:
        self.routes = [_Route(entry) for entry in entries]

    def describe(self) -> list[str]:
        return [f"{method} {route.path}" for route in self.routes for method in route.methods]

    def match(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        path = _normalize(path)
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.allows(method):
                return route, found.groupdict()
            allowed.extend(m for m in route.methods if m not in allowed)
        if allowed:
            if "GET" in allowed and "HEAD" not in allowed:
                allowed.append("HEAD")
            raise MethodNotAllowedError(f"{method} is not allowed on {path}", headers={"allow": ", ".join(allowed)})
        raise NotFoundError(f"no route for {method} {path}")


# -- schedules ----------------------------------------------------------------------------------


class _Schedules:
    def __init__(self, entries: Iterable[ScheduleEntry]) -> None:
        self.entries = list(entries)
        self.calls = {id(entry): _Call(entry.fn) for entry in self.entries}

    def match(self, request: Request) -> ScheduleEntry | None:
        """Which schedule a request triggers, if any: by path (``/_pilotlight/schedule/<name>``),
        by the ``x-pilotlight-schedule`` header, or — when the function has exactly one schedule —
        by the marks the platforms' connectors leave (a Knative PingSource's CloudEvent type,
        Fission's timer header, the OpenFaaS cron-connector's topic or user agent)."""
        if not self.entries:
            return None
        headers = request.headers
        if request.path.startswith(SCHEDULE_PATH):
            name: str | None = request.path[len(SCHEDULE_PATH) :]
        else:
            name = headers.get("x-pilotlight-schedule")
        if name is not None:
            return next((entry for entry in self.entries if entry.name == name), None)
        if len(self.entries) != 1:
            return None
        from_connector = (
            headers.get("ce-type") == "dev.knative.sources.ping"
            or headers.get("x-fission-timer-name") is not None
            or headers.get("x-topic") == "cron-function"
            or "cron-connector" in (headers.get("user-agent") or "")
        )
        return self.entries[0] if from_connector else None

    def published(self) -> list[dict[str, str]]:
        return [{"name": e.name, "cron": e.cron, "timezone": e.timezone} for e in self.entries]


# -- the served function ------------------------------------------------------------------------


class ServedFunction:
    """A function ready to serve: what the runtime and the testing entry both use."""

    def __init__(
        self,
        kind: str,
        dispatch: Callable[[Request, InvocationContext], Any],
        routes: list[str],
        schedules: _Schedules,
        initializers: list[_Call],
        pre_stops: list[_Call],
        info: FunctionInfo,
    ) -> None:
        #: ``routes`` (decorated functions) or ``handler`` (one plain function).
        self.kind = kind
        self._dispatch = dispatch
        #: ``METHOD /path`` of every route; ``* /`` for a plain handler.
        self.routes = routes
        self._schedules = schedules
        self._initializers = initializers
        self._pre_stops = pre_stops
        self.info = info

    @property
    def schedules(self) -> list[dict[str, str]]:
        """The schedules as the watchdog publishes them: name, cron, timezone."""
        return self._schedules.published()

    async def initialize(self) -> None:
        """Runs the initializer hooks in order.

        :raises FunctionShapeError: ``PILOTLIGHT_INITIALIZER_FAILED`` when one raises.
        """
        for hook in self._initializers:
            try:
                await hook()
            except Exception as error:
                raise FunctionShapeError(
                    "PILOTLIGHT_INITIALIZER_FAILED", f"the initializer {hook.name} failed: {type(error).__name__}: {error}"
                ) from error

    async def pre_stop(self, grace_ms: float) -> None:
        """Runs the pre-stop hooks within ``grace_ms``; a failing or late hook is logged, never raised."""
        info = PreStopInfo(grace_ms, default_logger)
        for hook in self._pre_stops:
            try:
                async with asyncio.timeout(info.remaining_ms() / 1000):
                    await hook((("info", info),))
            except TimeoutError:
                default_logger.warn(f"the pre-stop hook {hook.name} did not finish within the grace period")
            except Exception as error:  # noqa: BLE001 - one failing hook must not stop the others
                default_logger.error(f"the pre-stop hook {hook.name} failed: {error}", err=error)

    async def handle(self, head: RequestHead, body: bytes) -> Reply:
        """Answers one request (the server's handler). Must run in a task of its own: it sets the
        invocation for everything the request does."""
        request = Request.from_target(head.method, head.target, head.headers, body)
        return await self.respond(request)

    async def respond(self, request: Request) -> Reply:
        """Answers ``request`` inside a new invocation (context and log fields)."""
        context = create_context(request.headers, self.info)
        _scope.current.set(_scope.Scope(context._fields, context))
        try:
            schedule = self._schedules.match(request)
            if schedule is not None:
                result = await self._schedules.calls[id(schedule)]((("context", context),))
            else:
                result = await self._dispatch(request, context)
            return await to_reply(result, context.logger)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return describe_error(error, context.logger)


def _hooks(registrations: Registrations, module: ModuleType | None) -> tuple[list[_Call], list[_Call]]:
    initializers: list[Callable[..., Any]] = [h.fn for h in registrations.hooks if h.kind == "initializer"]
    pre_stops: list[Callable[..., Any]] = [h.fn for h in registrations.hooks if h.kind == "pre_stop"]
    if module is not None:
        # A plain module may define the hooks by name, as the TypeScript plain form exports them.
        for name, found in (("initialize", initializers), ("pre_stop", pre_stops)):
            fn = getattr(module, name, None)
            if callable(fn) and fn not in found:
                found.append(fn)
    return [_Call(fn) for fn in initializers], [_Call(fn) for fn in pre_stops]


def _plain(handler: Callable[..., Any], registrations: Registrations, module: ModuleType | None, info: FunctionInfo) -> ServedFunction:
    call = _Call(handler)
    initializers, pre_stops = _hooks(registrations, module)
    return ServedFunction(
        "handler",
        lambda request, context: call((("request", request), ("context", context))),
        ["* /"],
        _Schedules(registrations.schedules),
        initializers,
        pre_stops,
        info,
    )


def serve_module(
    module: ModuleType,
    attr: str | None,
    info: FunctionInfo,
    where: str,
    registrations: Registrations,
) -> ServedFunction:
    """Finds what a module serves: the function named by ``attr``; else the routes its import
    registered (``@route``, ``@get`` …); else a function named ``handler`` (or ``main``).

    :raises FunctionShapeError: ``PILOTLIGHT_NO_HANDLER`` when there is nothing to serve.
    """
    if attr is not None:
        chosen = getattr(module, attr, None)
        if chosen is None:
            raise FunctionShapeError("PILOTLIGHT_NO_HANDLER", f"{where} has no attribute {attr!r}")
        if not callable(chosen):
            raise FunctionShapeError("PILOTLIGHT_NO_HANDLER", f"{attr!r} in {where} is not a function")
        return _plain(chosen, registrations, module, info)
    if registrations.routes:
        router = _Router(registrations.routes)
        initializers, pre_stops = _hooks(registrations, module)

        async def dispatch(request: Request, context: InvocationContext) -> Any:
            route, params = router.match(request.method, request.path)
            request.params = params
            return await route.call((("request", request), ("context", context)), params)

        return ServedFunction("routes", dispatch, router.describe(), _Schedules(registrations.schedules), initializers, pre_stops, info)
    for name in ("handler", "main"):
        fn = getattr(module, name, None)
        if callable(fn) and not isinstance(fn, type):
            return _plain(fn, registrations, module, info)
    raise FunctionShapeError(
        "PILOTLIGHT_NO_HANDLER",
        f"{where} defines nothing to serve: decorate functions with @route/@get/@post…, "
        "or define handler(request, context)",
    )


def serve_callable(fn: Callable[..., Any], info: FunctionInfo, registrations: Registrations | None = None) -> ServedFunction:
    """Serves one plain function (the testing entry's ``invoke(handler)``)."""
    return _plain(fn, registrations or Registrations([], [], []), None, info)

