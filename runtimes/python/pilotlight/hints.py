"""``pilotlight.hints``: scale hints from function code — load the platform's autoscaler cannot
see from outside, told at once instead of at its next scrape::

    from pilotlight import hints
    hints.saturated(True)             # stop sending me work
    hints.load(len(queue), "queue")   # a load figure of the function's own

Inside the runtime a hint goes to the watchdog over the control channel; anywhere else (a
fork-mode script, a plain HTTP server) it is written as a JSON line with ``"pilotlight":"hint"``
to the log destination, which the watchdog reads from every process it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import _scope
from .logging import write_line

__all__ = ["saturated", "load", "set_sink"]

Sink = Callable[[dict[str, Any]], None]
_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Where hints go (the runtime sets its control channel); None: log lines."""
    global _sink
    _sink = sink


def _deliver(hint: dict[str, Any]) -> None:
    scope = _scope.current.get()
    if scope is not None:
        hint["request_id"] = scope.fields.get("request_id")
    sink = _sink
    if sink is not None:
        sink(hint)
    else:
        write_line({"pilotlight": "hint", **hint})


def saturated(value: bool) -> None:
    """Says whether this instance is saturated (True) or can take work again (False)."""
    if not isinstance(value, bool):
        raise TypeError(f"hints.saturated needs True or False, got {value!r}")
    _deliver({"saturated": value})


def load(value: float, metric: str | None = None) -> None:
    """Reports a load figure of the function's own (queue length, items pending, 0–1 utilisation…)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"hints.load needs a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"hints.load needs a finite number, got {value!r}")
    hint: dict[str, Any] = {"load": value}
    if metric is not None:
        hint["metric"] = str(metric)
    _deliver(hint)
