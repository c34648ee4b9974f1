"""The invocation the running code belongs to, carried across ``await`` (contextvars) and into the
threads that run synchronous handlers (the runtime copies the context into them)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, NamedTuple


class Scope(NamedTuple):
    """What is known about the active invocation."""

    #: Written on every log line of the invocation: request_id, trace_id, span_id, trace_flags,
    #: function, instance.
    fields: dict[str, Any]
    #: The SDK's InvocationContext.
    context: Any


current: ContextVar[Scope | None] = ContextVar("pilotlight_invocation", default=None)
