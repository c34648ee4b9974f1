"""``pilotlight.testing``: call a function in-process with a synthetic request and get its
response — no server, no watchdog. The same code path the runtime serves with (routing, the
invocation context, the thread pool for ``def`` handlers, response mapping, error bodies), so what
passes here behaves the same deployed::

    import main
    from pilotlight.testing import invoke

    def test_hello():
        res = invoke(main, "POST", "/", headers={"name": "world"})
        assert res.status == 200
        assert res.text == "hello world"

``target`` is a module (its decorated routes, or its ``handler``), a plain function, or the path
of a function's folder or file (loaded as the runtime loads it). Initializers run once per target.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import itertools
import json as _json
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from . import decorators
from ._http import Headers
from .context import FunctionInfo
from .loader import Entry, LoadError, _import, _version, resolve_entry
from .serve import FunctionShapeError, ServedFunction, serve_callable, serve_module
from .web import Request

__all__ = ["invoke", "invoke_async", "TestResponse", "served"]


class TestResponse:
    """What the function answered."""

    __test__ = False  # not a pytest test class

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status} {self.body[:60]!r}>"


_by_object: weakref.WeakKeyDictionary[Any, ServedFunction] = weakref.WeakKeyDictionary()
_by_path: dict[str, ServedFunction] = {}
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


_aliases = itertools.count()


def _import_for_test(entry: Entry) -> ModuleType:
    """Imports like the runtime does; a module name already taken by another file (two functions
    with a main.py tested in one process) is imported under an alias instead."""
    existing = sys.modules.get(entry.module)
    taken = existing is not None and os.path.realpath(getattr(existing, "__file__", None) or "") != os.path.realpath(entry.file)
    if not taken or entry.root_package:
        return _import(entry)
    alias = f"pilotlight_test_{next(_aliases)}_{entry.module.replace('.', '_')}"
    if entry.root not in sys.path:
        sys.path.insert(0, entry.root)
    spec = importlib.util.spec_from_file_location(alias, entry.file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def _from_path(path: str, info: FunctionInfo) -> ServedFunction:
    root, entrypoint = (path, None) if os.path.isdir(path) else (os.path.dirname(path) or ".", os.path.basename(path))
    entry = resolve_entry(root, entrypoint)
    position = decorators.mark()
    module = _import_for_test(entry)
    registrations = decorators.since(position)
    if not (registrations.routes or registrations.hooks or registrations.schedules):
        # Imported before (by the test itself): take what its modules registered.
        registrations = decorators.of_modules([module.__name__])
    info = FunctionInfo(info.name, _version(entry.root, module), info.instance)
    return serve_module(module, entry.attr, info, entry.file, registrations)


async def served(target: Any, *, function_name: str = "test", instance: str = "test") -> ServedFunction:
    """The :class:`~pilotlight.serve.ServedFunction` for ``target``, initialized (once per target).

    :raises FunctionShapeError: the target serves nothing, or its initializer failed.
    """
    info = FunctionInfo(function_name, None, instance)
    if isinstance(target, (str, os.PathLike)):
        key = os.path.abspath(os.fspath(target))
        found = _by_path.get(key)
        if found is None:
            try:
                found = _from_path(key, info)
            except LoadError as error:
                raise FunctionShapeError(error.code, error.message) from error
            await found.initialize()
            _by_path[key] = found
        return found
    found = _by_object.get(target)
    if found is None:
        if isinstance(target, ModuleType):
            registrations = decorators.of_modules([target.__name__])
            found = serve_module(target, None, info, getattr(target, "__file__", None) or target.__name__, registrations)
        elif callable(target):
            found = serve_callable(target, info)
        else:
            raise TypeError(f"invoke() takes a module, a function or a path, got {target!r}")
        await found.initialize()
        _by_object[target] = found
    return found


def _request(method: str, path: str, headers: Mapping[str, str] | None, body: Any, timeout_ms: float | None) -> Request:
    out = Headers(headers)
    if body is None:
        payload = b""
    elif isinstance(body, str):
        payload = body.encode()
    elif isinstance(body, (bytes, bytearray, memoryview)):
        payload = bytes(body)
    else:
        payload = _json.dumps(body).encode()
        out.setdefault("content-type", "application/json")
    if timeout_ms is not None:
        out.set("x-pilotlight-deadline", str(int(time.time() * 1000 + timeout_ms)))
    return Request.from_target(method, path, out, payload)


async def _collect(function: ServedFunction, request: Request) -> TestResponse:
    status, headers, body = await function.respond(request)
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        data = b"".join([chunk async for chunk in body])
    if request.method == "HEAD" or status in (204, 304):
        data = b""
    return TestResponse(status, Headers(headers), data)


async def invoke_async(
    target: Any,
    method: str = "GET",
    path: str = "/",
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    function_name: str = "test",
    timeout_ms: float | None = None,
) -> TestResponse:
    """:func:`invoke` for code already running in an event loop."""
    function = await served(target, function_name=function_name)
    request = _request(method, path, headers, body, timeout_ms)
    # A task of its own with a copied context, as the server runs each request.
    return await asyncio.get_running_loop().create_task(_collect(function, request), context=contextvars.copy_context())


def invoke(
    target: Any,
    method: str = "GET",
    path: str = "/",
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    function_name: str = "test",
    timeout_ms: float | None = None,
) -> TestResponse:
    """Invokes ``target`` with one request and returns its response.

    ``body``: str or bytes as is; anything else as JSON (with its content-type). ``headers`` such
    as ``x-request-id`` or ``traceparent`` fix the ids the context sees; ``timeout_ms`` gives the
    invocation a deadline, as the watchdog's exec timeout would. Every call runs on one event loop
    kept for the purpose, so what an async initializer made is still usable by later calls.
    """
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
        loop = _loop
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("invoke() was called inside a running event loop: await invoke_async() instead")
    return loop.run_until_complete(
        invoke_async(target, method, path, headers=headers, body=body, function_name=function_name, timeout_ms=timeout_ms)
    )
