"""The cron validator: the five-field syntax the platforms' connectors accept."""

from __future__ import annotations

import pytest

from pilotlight import schedule
from pilotlight.cron import CronError, parse, validate


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "*/5 * * * *",
        "0 */6 * * *",
        "0 0 1 1 *",
        "15,45 9-17 * * MON-FRI",
        "0 12 * JAN,jul sun",
        "0-30/10 * * * *",
        "5/15 * * * *",
        "0 0 ? * 7",
        "59 23 31 12 6",
        "  0  0  *  *  *  ",
        "@hourly",
        "@DAILY",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ],
)
def test_accepts(expression):
    assert validate(expression) == expression


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "expected 5 fields"),
        ("* * * *", "expected 5 fields"),
        ("0 * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day of month: 0 is outside 1-31"),
        ("* * 32 * *", "day of month"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day of week: 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("*/x * * * *", "step"),
        ("30-10 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("* * * FOO *", "is not a number or a name"),
        ("* * * * MON-FOO", "day of week"),
        ("? * * * *", "minute"),
        ("0 0 L * *", "day of month"),
        ("0 0 * * 1#2", "day of week"),
        ("@often", "unknown nickname"),
    ],
)
def test_refuses_with_the_reason(expression, reason):
    with pytest.raises(CronError) as refused:
        validate(expression)
    assert reason in str(refused.value)


def test_expands_fields():
    parsed = parse("0-10/5 9-17 1,15 JAN-MAR MON-FRI")
    assert parsed.minutes == {0, 5, 10}
    assert parsed.hours == set(range(9, 18))
    assert parsed.days_of_month == {1, 15}
    assert parsed.months == {1, 2, 3}
    assert parsed.days_of_week == {1, 2, 3, 4, 5}


def test_weekday_seven_is_sunday():
    assert parse("* * * * 7").days_of_week == {0}
    assert parse("* * * * 5-7").days_of_week == {5, 6, 0}
    assert parse("* * * * *").days_of_week == set(range(7))


def test_a_from_step_runs_to_the_end_of_the_range():
    assert parse("50/5 * * * *").minutes == {50, 55}
    assert parse("* * * * 1/2").days_of_week == {1, 3, 5}


def test_the_schedule_decorator_refuses_a_bad_expression_when_applied():
    with pytest.raises(ValueError, match=r'@schedule\("61 \* \* \* \*"\) is not a valid cron expression: minute: 61'):
        schedule("61 * * * *")


def test_the_schedule_decorator_refuses_an_unknown_time_zone():
    with pytest.raises(ValueError, match="unknown time zone"):
        schedule("* * * * *", timezone="Mars/Olympus_Mons")
