"""The decorators a function is written with, and the registry they fill.

Routes::

    @post("/")                       # or @route("POST", "/")
    def hello(request, context):
        return f"hello {request.header('name')}"

    @get("/items/{item_id}")         # placeholders arrive in request.params, and as keyword
    async def item(request, item_id):  # arguments to a function that names them
        ...

Lifecycle hooks (``@initializer`` once after load, before the instance is ready; ``@pre_stop``
on drain, with the time left) and schedules (``@schedule("*/5 * * * *")``: the watchdog publishes
them for the platform's cron connector and routes its calls here). A decorator returns the
function unchanged, so it can still be called and tested directly.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from .cron import CronError, validate

__all__ = [
    "route",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "initializer",
    "pre_stop",
    "schedule",
    "RouteEntry",
    "HookEntry",
    "ScheduleEntry",
    "Registrations",
]

F = TypeVar("F", bound=Callable[..., Any])

_METHOD = re.compile(r"[A-Z][A-Z0-9_-]*|\*")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class RouteEntry(NamedTuple):
    methods: tuple[str, ...]
    path: str
    fn: Callable[..., Any]


class HookEntry(NamedTuple):
    kind: str  # "initializer" | "pre_stop"
    fn: Callable[..., Any]


class ScheduleEntry(NamedTuple):
    name: str
    cron: str
    timezone: str
    fn: Callable[..., Any]


class Registrations(NamedTuple):
    """What decorators registered, in order."""

    routes: list[RouteEntry]
    hooks: list[HookEntry]
    schedules: list[ScheduleEntry]


_lock = threading.Lock()
_routes: list[RouteEntry] = []
_hooks: list[HookEntry] = []
_schedules: list[ScheduleEntry] = []


def mark() -> tuple[int, int, int]:
    """A position in the registry, to take what a module registers while it is imported."""
    with _lock:
        return (len(_routes), len(_hooks), len(_schedules))


def since(position: tuple[int, int, int]) -> Registrations:
    """Everything registered after ``position``."""
    with _lock:
        return Registrations(_routes[position[0] :], _hooks[position[1] :], _schedules[position[2] :])


def of_modules(names: Iterable[str]) -> Registrations:
    """Everything registered by functions defined in the modules ``names`` or their submodules."""
    prefixes = tuple(names)

    def belongs(fn: Callable[..., Any]) -> bool:
        module = getattr(fn, "__module__", None) or ""
        return any(module == name or module.startswith(name + ".") for name in prefixes)

    with _lock:
        return Registrations(
            [r for r in _routes if belongs(r.fn)],
            [h for h in _hooks if belongs(h.fn)],
            [s for s in _schedules if belongs(s.fn)],
        )


def _check_callable(fn: Any, decorator: str) -> None:
    if not callable(fn):
        raise TypeError(f"@{decorator} decorates a function, got {fn!r}")


def route(method: str | Iterable[str], path: str = "/") -> Callable[[F], F]:
    """Serves ``method path`` with the decorated function. ``method`` may be a list, or ``"*"``
    for any; ``GET`` routes answer ``HEAD`` too. ``{name}`` in the path matches one segment."""
    methods = (method,) if isinstance(method, str) else tuple(method)
    methods = tuple(m.upper() for m in methods)
    if not methods or any(_METHOD.fullmatch(m) is None for m in methods):
        raise ValueError(f"@route: invalid method {method!r}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"@route: the path must start with '/', got {path!r}")
    for name in _PLACEHOLDER.findall(path):
        if not name.isidentifier():
            raise ValueError(f"@route: placeholder {{{name}}} in {path!r} must be a Python identifier")

    def decorate(fn: F) -> F:
        _check_callable(fn, "route")
        with _lock:
            _routes.append(RouteEntry(methods, path, fn))
        return fn

    return decorate


def get(path: str = "/") -> Callable[[F], F]:
    return route("GET", path)


def post(path: str = "/") -> Callable[[F], F]:
    return route("POST", path)


def put(path: str = "/") -> Callable[[F], F]:
    return route("PUT", path)


def patch(path: str = "/") -> Callable[[F], F]:
    return route("PATCH", path)


def delete(path: str = "/") -> Callable[[F], F]:
    return route("DELETE", path)


def head(path: str = "/") -> Callable[[F], F]:
    return route("HEAD", path)


def options(path: str = "/") -> Callable[[F], F]:
    return route("OPTIONS", path)


def _hook(kind: str, fn: Any) -> Any:
    def decorate(target: F) -> F:
        _check_callable(target, kind)
        with _lock:
            _hooks.append(HookEntry(kind, target))
        return target

    # Both @initializer and @initializer() work.
    return decorate(fn) if fn is not None else decorate


def initializer(fn: F | None = None) -> Any:
    """Runs the decorated function (sync or async, no arguments) once after the function's code is
    loaded, before the instance reports ready. If it raises, loading fails: specialization answers
    422 (``PILOTLIGHT_INITIALIZER_FAILED``) and the instance stays generic."""
    return _hook("initializer", fn)


def pre_stop(fn: F | None = None) -> Any:
    """Runs the decorated function when the instance drains (SIGTERM), after in-flight requests
    finished, with a :class:`~pilotlight.context.PreStopInfo` (the grace time left) if it takes
    an argument. Use it to flush buffers and close connections."""
    return _hook("pre_stop", fn)


def _check_timezone(timezone: str) -> None:
    if timezone in ("UTC", "Etc/UTC"):
        return
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(timezone)
    except Exception as error:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for odd keys
        raise ValueError(f"@schedule: unknown time zone {timezone!r} ({error})") from None


def schedule(cron: str, *, name: str | None = None, timezone: str = "UTC") -> Callable[[F], F]:
    """The decorated function runs on a cron schedule. Pilotlight keeps no time itself: the
    watchdog publishes the schedule (``GET /_/schedules``) so the platform's cron connector is
    configured from it, and routes the connector's call — ``POST /_pilotlight/schedule/<name>``,
    header ``x-pilotlight-schedule: <name>``, or a Knative PingSource event when it is the only
    schedule — to the function, with the invocation context if it takes an argument.

    The expression is checked here: a bad one fails the import, so the load fails with the reason.
    """
    try:
        validate(cron)
    except CronError as error:
        raise ValueError(f'@schedule("{cron}") is not a valid cron expression: {error}') from None
    _check_timezone(timezone)

    def decorate(fn: F) -> F:
        _check_callable(fn, "schedule")
        entry_name = name if name is not None else getattr(fn, "__name__", "schedule")
        with _lock:
            _schedules.append(ScheduleEntry(entry_name, cron, timezone, fn))
        return fn

    return decorate
