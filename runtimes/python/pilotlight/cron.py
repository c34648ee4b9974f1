"""Cron expressions: a validator (and parser) for the five-field syntax every platform's cron
connector speaks — Kubernetes CronJob, Knative PingSource, the OpenFaaS cron-connector, Fission
time triggers.

``minute hour day-of-month month day-of-week``, each field a ``*``, a number, a range ``a-b``,
a step ``*/n``, ``a-b/n`` or ``a/n``, or a comma-separated list of those; months and weekdays
also by their English three-letter names (``JAN``, ``MON``), case-insensitive; weekday 7 is
Sunday like 0; ``?`` is ``*`` in the day fields. The nicknames ``@yearly`` (``@annually``),
``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and ``@hourly`` stand for their
expressions. Quartz extensions (``L``, ``W``, ``#``, a seconds field) are refused: not every
connector understands them.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CronError", "CronSchedule", "parse", "validate", "NICKNAMES"]

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = {name: i + 1 for i, name in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


class _Field(NamedTuple):
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _DAYS),
)


class CronError(ValueError):
    """An expression that is not valid cron, with the reason."""


class CronSchedule(NamedTuple):
    """The values each field allows (weekday 7 folded into 0)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]


def _value(text: str, field: _Field) -> int:
    key = text.lower()
    if key in field.names:
        return field.names[key]
    if not text.isdigit():
        raise CronError(f"{field.name}: {text!r} is not a number" + (f" or a name ({', '.join(n.upper() for n in field.names)})" if field.names else ""))
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if item == "":
            raise CronError(f"{field.name}: empty list item in {text!r}")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field.name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*" or (base == "?" and field.name.startswith("day")):
            low, high = field.low, field.high
            if field.name == "day of week":
                high = 6
        elif "-" in base:
            start, _, end = base.partition("-")
            low, high = _value(start, field), _value(end, field)
            if low > high:
                raise CronError(f"{field.name}: range {base!r} runs backwards")
        else:
            low = _value(base, field)
            # "a/n" means from a to the end in steps of n; a bare "a" is just a.
            high = (6 if field.name == "day of week" else field.high) if slash else low
        values.update(range(low, high + 1, step))
    if field.name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def parse(expression: str) -> CronSchedule:
    """Parses a cron expression into the values of each field.

    :raises CronError: with what is wrong and where.
    """
    if not isinstance(expression, str):
        raise CronError(f"a cron expression is a string, got {type(expression).__name__}")
    text = expression.strip()
    if text.startswith("@"):
        nickname = NICKNAMES.get(text.lower())
        if nickname is None:
            raise CronError(f"unknown nickname {text!r}: use one of {', '.join(NICKNAMES)}")
        text = nickname
    fields = text.split()
    if len(fields) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)} in {expression!r}"
        )
    return CronSchedule(*(_parse_field(part, field) for part, field in zip(fields, _FIELDS)))


def validate(expression: str) -> str:
    """Returns ``expression`` if it is valid cron.

    :raises CronError: otherwise, with the reason.
    """
    parse(expression)
    return expression
