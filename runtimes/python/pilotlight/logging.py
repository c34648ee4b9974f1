"""``pilotlight.logging``: the platform logger. Every line is one JSON object, and lines written
during an invocation carry its ``request_id``, ``trace_id``, ``span_id``, ``trace_flags``,
``function`` and ``instance`` — correct across ``await``, in concurrent asyncio tasks and in the
threads that run synchronous handlers, because they come from a context variable.

The fields are those of the TypeScript logger (pino): ``level`` (``trace`` … ``fatal``), ``time``
(ISO 8601, UTC, milliseconds), ``msg``, then the fields given::

    from pilotlight import logger
    logger.info("function is running", name=name)
    # {"level":"info","time":"…","request_id":"…","trace_id":"…",…,"name":"world","msg":"function is running"}

The standard library's ``logging`` can write the same lines: the runtime installs
:class:`JsonHandler` on the root logger (call :func:`install` yourself elsewhere).

Where lines go: inside the runtime, stdout (the watchdog reads it); elsewhere — a fork-mode
script, whose stdout is its response — stderr; ``PILOTLIGHT_LOG_FILE`` names a file instead.
Lines are written whole, one ``write`` each, under a lock, so threads never interleave them; the
runtime makes ``sys.stdout`` and ``sys.stderr`` :class:`LineWriter` s writing under the same lock,
so lines ``print``-ed from concurrent handler threads stay whole too.
"""

from __future__ import annotations

import dataclasses
import datetime as _datetime
import io
import json
import logging as _stdlib
import os
import select
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from . import _scope

__all__ = [
    "Logger",
    "logger",
    "get_logger",
    "JsonHandler",
    "install",
    "serialize_error",
    "LEVELS",
    "set_destination",
    "LineWriter",
    "capture_stdio",
]

#: pino's level numbers.
LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}
_ALIASES = {"warning": "warn", "critical": "fatal", "exception": "error", "notset": "trace"}


def _level_name(level: str | None) -> str:
    name = (level or "info").strip().lower()
    name = _ALIASES.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    return name


#: Held for every write this module makes to a file descriptor (log lines, and the lines of
#: :class:`LineWriter`), so nothing the process writes through it ever lands inside another line.
_write_lock = threading.RLock()


def _write_all(fd: int, data: bytes) -> None:
    """Writes all of ``data`` to ``fd``; the caller holds ``_write_lock``."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError:
            return  # nobody reads our output any more; logging must not break the function
        view = view[written:]


class _Destination:
    """The one place every logger of the process writes, so lines keep their order."""

    def __init__(self) -> None:
        self._lock = _write_lock
        self._fd: int | None = None
        self._owned = False

    def set(self, fd: int | None = None, path: str | None = None) -> None:
        with self._lock:
            if self._owned and self._fd is not None:
                os.close(self._fd)
            self._owned = False
            self._fd = None
            if path:
                directory = os.path.dirname(path)
                if directory:
                    os.makedirs(directory, exist_ok=True)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._owned = True
            elif fd is not None:
                self._fd = fd

    def _resolve(self) -> int:
        if self._fd is None:
            path = os.environ.get("PILOTLIGHT_LOG_FILE")
            if path:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._owned = True
            else:
                self._fd = 2
        return self._fd

    def write(self, data: bytes) -> None:
        with self._lock:
            _write_all(self._resolve(), data)


_destination = _Destination()


class LineWriter(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` for the runtime: what a thread writes is held until it ends a
    line, then its complete lines go out in one ``write`` under the lock log lines are written
    under. ``print`` writes its arguments, separators and end one by one (and ``python3 -u``
    sends each straight to the file descriptor), so without this, ``print`` from handlers running
    in concurrent threads splices into one another's lines and into JSON log lines.

    Each thread has its own pending line: ``flush()`` writes the calling thread's (as
    ``print(..., flush=True)`` asks), :meth:`flush_all` everyone's (at exit). A pending line over
    ``MAX_PENDING`` characters is written as it is, so a thread that never ends its line cannot
    grow memory without bound. Anything else (``buffer``, ``name``, ``mode``) is the wrapped stream's.
    """

    #: Characters a thread may leave without a newline before they are written anyway.
    MAX_PENDING = 64 * 1024

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self._fd = stream.fileno()
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._errors = getattr(stream, "errors", None) or "strict"
        self._pending: dict[int, str] = {}

    @property
    def wrapped(self) -> Any:
        return self._stream

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    @property
    def errors(self) -> str:  # type: ignore[override]
        return self._errors

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return self._stream.isatty()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        me = threading.get_ident()
        with _write_lock:
            pending = self._pending.pop(me, "") + text
            end = pending.rfind("\n") + 1
            if end == 0 and len(pending) <= self.MAX_PENDING:
                self._pending[me] = pending
                return len(text)
            if end == 0 or len(pending) - end > self.MAX_PENDING:
                end = len(pending)
            complete, rest = pending[:end], pending[end:]
            if rest:
                self._pending[me] = rest
            _write_all(self._fd, complete.encode(self._encoding, self._errors))
        return len(text)

    def flush(self) -> None:
        with _write_lock:
            pending = self._pending.pop(threading.get_ident(), "")
            if pending:
                _write_all(self._fd, pending.encode(self._encoding, self._errors))

    def flush_all(self) -> None:
        """Writes every thread's pending text, each in one write (the process is ending)."""
        with _write_lock:
            pending, self._pending = list(self._pending.values()), {}
            for text in pending:
                _write_all(self._fd, text.encode(self._encoding, self._errors))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def capture_stdio() -> None:
    """Makes ``sys.stdout`` and ``sys.stderr`` :class:`LineWriter` s (the runtime, before any
    function code runs), so lines printed from concurrent threads come out whole."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, LineWriter):
            continue
        try:
            stream.flush()
            writer = LineWriter(stream)
        except (AttributeError, OSError, ValueError):
            continue  # not backed by a file descriptor: left as it is
        setattr(sys, name, writer)


def set_destination(fd: int | None = None, path: str | None = None) -> None:
    """Sends every line to file descriptor ``fd`` or the file at ``path`` (the runtime: stdout)."""
    _destination.set(fd, path)


def serialize_error(error: BaseException) -> dict[str, Any]:
    """An exception as pino's ``err`` serializer writes one: type, message, stack (traceback)."""
    out: dict[str, Any] = {
        "type": type(error).__name__,
        "message": str(error),
        "stack": "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip("\n"),
    }
    status = getattr(error, "status", None)
    if isinstance(status, int):
        out["status"] = status
    return out


def _default(value: Any) -> Any:
    if isinstance(value, BaseException):
        return serialize_error(value)
    if isinstance(value, (_datetime.datetime, _datetime.date, _datetime.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return repr(value)


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (int(now * 1000) % 1000)


def _dumps(record: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(record, default=_default, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as error:
        # A field that cannot be written (a circular or too deeply nested structure): keep the line, say why.
        text = json.dumps(
            {"level": record.get("level"), "time": record.get("time"), "msg": str(record.get("msg")), "log_error": str(error)},
            separators=(",", ":"),
        )
    return text.encode("utf-8", "replace") + b"\n"


_default_level = "info"


_STDLIB_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40, "fatal": 50}


def refresh_level() -> None:
    """Re-reads ``PILOTLIGHT_FUNCTION_LOG_LEVEL`` (the runtime calls this once the function's env
    is set), for the loggers without a level of their own and the root ``logging`` logger when
    :func:`install` made it write JSON lines."""
    global _default_level
    try:
        _default_level = _level_name(os.environ.get("PILOTLIGHT_FUNCTION_LOG_LEVEL"))
    except ValueError:
        _default_level = "info"
    root = _stdlib.getLogger()
    if any(isinstance(handler, JsonHandler) for handler in root.handlers):
        root.setLevel(_STDLIB_LEVELS[_default_level])


def write_line(record: dict[str, Any]) -> None:
    """Writes one JSON object as a line to the shared destination."""
    _destination.write(_dumps(record))


class Logger:
    """A structured logger: ``logger.info("message", key=value, …)``.

    A mapping first is taken as the fields, pino-style (``logger.info({"n": 1}, "message")``);
    extra positional arguments %-format the message as in the standard library. ``err=`` (or any
    field) holding an exception is written as ``{"type", "message", "stack"}``.
    """

    __slots__ = ("_bindings", "_level", "_inject", "_name")

    def __init__(
        self,
        *,
        level: str | None = None,
        name: str | None = None,
        bindings: Mapping[str, Any] | None = None,
        inject_invocation: bool = True,
    ) -> None:
        self._level = _level_name(level) if level is not None else None
        self._name = name
        self._bindings = dict(bindings or {})
        #: Add the active invocation's fields to every line (off for loggers bound to one already).
        self._inject = inject_invocation

    @property
    def level(self) -> str:
        return self._level or _default_level

    @level.setter
    def level(self, value: str) -> None:
        self._level = _level_name(value)

    @property
    def bindings(self) -> dict[str, Any]:
        return dict(self._bindings)

    def child(self, **bindings: Any) -> Logger:
        """A logger that writes ``bindings`` on every line as well."""
        out = Logger(name=self._name, bindings={**self._bindings, **bindings}, inject_invocation=self._inject)
        out._level = self._level
        return out

    def is_enabled(self, level: str) -> bool:
        return LEVELS[_level_name(level)] >= LEVELS[self.level]

    def log(self, level: str, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        name = _level_name(level)
        if LEVELS[name] < LEVELS[self._level or _default_level]:
            return
        if isinstance(msg, Mapping):
            fields = {**msg, **fields}
            msg = args[0] if args else ""
            args = args[1:]
        text = str(msg)
        if args:
            try:
                text = text % args
            except (TypeError, ValueError):
                text = " ".join([text, *map(str, args)])
        record: dict[str, Any] = {"level": name, "time": _now_iso()}
        if self._name is not None:
            record["name"] = self._name
        if self._inject:
            scope = _scope.current.get()
            if scope is not None:
                record.update(scope.fields)
        if self._bindings:
            record.update(self._bindings)
        if fields:
            record.update(fields)
        record["msg"] = text
        write_line(record)

    def trace(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        self.log("trace", msg, *args, **fields)

    def debug(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        self.log("debug", msg, *args, **fields)

    def info(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        self.log("info", msg, *args, **fields)

    def warn(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        self.log("warn", msg, *args, **fields)

    warning = warn

    def error(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        self.log("error", msg, *args, **fields)

    def fatal(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        self.log("fatal", msg, *args, **fields)

    critical = fatal

    def exception(self, msg: Any = "", /, *args: Any, **fields: Any) -> None:
        """Logs at ``error`` with the exception being handled as ``err``."""
        error = sys.exc_info()[1]
        if error is not None:
            fields.setdefault("err", error)
        self.log("error", msg, *args, **fields)


#: The function's logger.
logger = Logger()


def get_logger(name: str | None = None, **bindings: Any) -> Logger:
    """A logger writing ``name`` (and ``bindings``) on every line."""
    return Logger(name=name, bindings=bindings)


_STANDARD_ATTRS = frozenset(vars(_stdlib.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _from_stdlib_level(levelno: int) -> str:
    if levelno >= _stdlib.CRITICAL:
        return "fatal"
    if levelno >= _stdlib.ERROR:
        return "error"
    if levelno >= _stdlib.WARNING:
        return "warn"
    if levelno >= _stdlib.INFO:
        return "info"
    if levelno >= _stdlib.DEBUG:
        return "debug"
    return "trace"


class JsonHandler(_stdlib.Handler):
    """A ``logging`` handler writing the platform's JSON lines: ``logging.getLogger(__name__).info(…)``
    gets the invocation's ids too. ``extra={…}`` fields are written as fields; the logger's name
    as ``logger``; ``exc_info`` as ``err``."""

    def emit(self, record: _stdlib.LogRecord) -> None:
        try:
            out: dict[str, Any] = {"level": _from_stdlib_level(record.levelno), "time": _now_iso()}
            scope = _scope.current.get()
            if scope is not None:
                out.update(scope.fields)
            if record.name and record.name != "root":
                out["logger"] = record.name
            for key, value in record.__dict__.items():
                if key not in _STANDARD_ATTRS and not key.startswith("_"):
                    out[key] = value
            if record.exc_info and record.exc_info[1] is not None:
                out["err"] = record.exc_info[1]
            out["msg"] = record.getMessage()
            write_line(out)
        except Exception:  # noqa: BLE001 - the logging module's convention
            self.handleError(record)


def install(level: str | None = None) -> JsonHandler:
    """Makes the root ``logging`` logger write JSON lines (replacing its handlers) at ``level``
    (default ``PILOTLIGHT_FUNCTION_LOG_LEVEL`` or info), and routes ``warnings`` through it."""
    root = _stdlib.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = JsonHandler()
    root.addHandler(handler)
    name = _level_name(level) if level is not None else _default_level
    root.setLevel(_STDLIB_LEVELS[name])
    _stdlib.captureWarnings(True)
    return handler


refresh_level()
