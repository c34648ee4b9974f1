"""The invocation context: what a function knows about the invocation it is serving. Passed to
handlers as their second argument, and available anywhere inside the invocation (other
coroutines, the handler's thread) through :func:`current_context`."""

from __future__ import annotations

import datetime as _datetime
import math
import random
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _scope
from .logging import Logger

__all__ = ["InvocationContext", "FunctionInfo", "PreStopInfo", "create_context", "current_context"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32


@dataclass(frozen=True)
class FunctionInfo:
    """What the runtime knows about the function it serves."""

    name: str | None = None
    version: str | None = None
    instance: str | None = None


class InvocationContext:
    """The context of one invocation (the TypeScript SDK's ``InvocationContext``, snake_case)."""

    __slots__ = (
        "request_id",
        "trace_id",
        "span_id",
        "trace_flags",
        "traceparent",
        "deadline",
        "deadline_ms",
        "function_name",
        "function_version",
        "instance_id",
        "_fields",
        "_logger",
    )

    def __init__(
        self,
        *,
        request_id: str,
        trace_id: str,
        span_id: str,
        trace_flags: str,
        deadline_ms: float | None,
        info: FunctionInfo,
    ) -> None:
        #: ``X-Request-Id``: as the caller sent it, or made up by the watchdog.
        self.request_id = request_id
        #: The W3C trace this invocation belongs to (32 hex digits).
        self.trace_id = trace_id
        #: This invocation's own span (16 hex digits); its parent is the caller's span.
        self.span_id = span_id
        #: W3C trace flags (``01`` sampled).
        self.trace_flags = trace_flags
        #: The ``traceparent`` to send on calls this invocation makes, so they join the trace.
        self.traceparent = f"00-{trace_id}-{span_id}-{trace_flags}"
        #: Epoch milliseconds by which the watchdog answers 504 instead; None: no limit.
        self.deadline_ms = deadline_ms
        #: The same as an aware UTC datetime.
        self.deadline = (
            _datetime.datetime.fromtimestamp(deadline_ms / 1000, _datetime.timezone.utc) if deadline_ms is not None else None
        )
        #: The function's name, as the platform gave it at specialization or start.
        self.function_name = info.name
        #: ``PILOTLIGHT_FUNCTION_VERSION``, ``K_REVISION``, or the function's pyproject.toml version.
        self.function_version = info.version
        #: The instance serving this invocation (the pod name on Kubernetes).
        self.instance_id = info.instance
        self._fields: dict[str, Any] = {
            "request_id": request_id,
            "trace_id": trace_id,
            "span_id": span_id,
            "trace_flags": trace_flags,
        }
        if info.name is not None:
            self._fields["function"] = info.name
        if info.instance is not None:
            self._fields["instance"] = info.instance
        self._logger: Logger | None = None

    def remaining_ms(self) -> float:
        """Milliseconds until :attr:`deadline`; ``math.inf`` without one."""
        if self.deadline_ms is None:
            return math.inf
        return max(0.0, self.deadline_ms - time.time() * 1000)

    @property
    def fields(self) -> dict[str, Any]:
        """The ids written on this invocation's log lines."""
        return dict(self._fields)

    @property
    def logger(self) -> Logger:
        """A logger whose lines carry this invocation's ids, even when used outside its context
        (a thread the function started itself)."""
        if self._logger is None:
            self._logger = Logger(bindings=self._fields, inject_invocation=False)
        return self._logger

    def to_dict(self) -> dict[str, Any]:
        """The context as JSON-friendly values (``remaining_ms`` None without a deadline)."""
        remaining = self.remaining_ms()
        return {
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "trace_flags": self.trace_flags,
            "traceparent": self.traceparent,
            "deadline": self.deadline_ms,
            "remaining_ms": None if math.isinf(remaining) else remaining,
            "function_name": self.function_name,
            "function_version": self.function_version,
            "instance_id": self.instance_id,
        }

    def __repr__(self) -> str:
        return f"<InvocationContext request_id={self.request_id!r} trace_id={self.trace_id!r} span_id={self.span_id!r}>"


def _random_hex(bits: int) -> str:
    # As OpenTelemetry's Python SDK makes its ids: random, not secret, and without a system call.
    value = 0
    while value == 0:
        value = random.getrandbits(bits)
    return f"{value:0{bits // 4}x}"


def create_context(headers: Mapping[str, str] | Any, info: FunctionInfo) -> InvocationContext:
    """The context of one invocation from the headers the watchdog sends: ``x-request-id``,
    ``traceparent`` (this invocation gets a fresh span id as a child of the caller's span; without
    a valid one a new trace starts) and ``x-pilotlight-deadline`` (epoch milliseconds)."""
    request_id = headers.get("x-request-id") or str(uuid.uuid4())
    parent = _TRACEPARENT.match(headers.get("traceparent") or "")
    trace_id = parent.group(1) if parent and parent.group(1) != _INVALID_TRACE else _random_hex(128)
    trace_flags = parent.group(3) if parent else "01"
    deadline_ms: float | None = None
    raw = headers.get("x-pilotlight-deadline")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            deadline_ms = value
    return InvocationContext(
        request_id=request_id,
        trace_id=trace_id,
        span_id=_random_hex(64),
        trace_flags=trace_flags,
        deadline_ms=deadline_ms,
        info=info,
    )


def current_context() -> InvocationContext | None:
    """The context of the invocation running now, or None outside one."""
    scope = _scope.current.get()
    return scope.context if scope is not None else None


class PreStopInfo:
    """What a pre-stop hook is told: how long it has."""

    __slots__ = ("deadline", "deadline_ms", "logger")

    def __init__(self, grace_ms: float, logger: Logger) -> None:
        self.deadline_ms = time.time() * 1000 + grace_ms
        #: When the watchdog stops waiting and kills the runtime.
        self.deadline = _datetime.datetime.fromtimestamp(self.deadline_ms / 1000, _datetime.timezone.utc)
        #: The function's logger.
        self.logger = logger

    def remaining_ms(self) -> float:
        """Milliseconds left until :attr:`deadline`."""
        return max(0.0, self.deadline_ms - time.time() * 1000)
