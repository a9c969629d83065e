"""Schedule expressions as EventBridge Scheduler reads them: ``rate(value unit)`` and
``cron(minutes hours day-of-month month day-of-week year)`` evaluated in an IANA time zone.

On AWS, EventBridge Scheduler decides when a schedule fires; batchplane only checks the
expression up front (so a bad one is a ClientException with a useful message) and, in
local mode, computes the firings itself with these rules:

- rate: the first firing is the start (creation) time, then every ``value`` units; a day
  is 24 hours whatever daylight saving time does.
- cron: the wall-clock times of the expression in its time zone. A time that does not
  exist (the hour skipped when DST starts) fires nothing; a time that happens twice (the
  hour repeated when DST ends) fires once, as EventBridge Scheduler does.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ClientException

RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
# The longest rate period: its firings stay within the dates a clock can name (a rate of
# 400 nines cannot even be divided into a float of seconds).
MAX_RATE_DAYS = 36_500
CRON_FIELDS = 6  # minutes hours day-of-month month day-of-week year
_RATE = re.compile(r"^rate\((\d+) ([a-z]+)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
MIN_YEAR, MAX_YEAR = 1970, 2199
CRON_HELP = (
    "use cron(minutes hours day-of-month month day-of-week year), for example "
    "cron(0 12 * * ? *) for every day at 12:00"
)

DayMatcher = Callable[[date], bool]


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, after: float, anchor: float) -> float:
        """The first firing strictly after ``after`` (epoch seconds) on the grid
        ``anchor + k * seconds``, k >= 0."""
        if after < anchor:
            return anchor
        k = int((after - anchor) // self.seconds) + 1
        return anchor + k * self.seconds


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day: DayMatcher

    def next_after(self, after: float, zone: ZoneInfo) -> float | None:
        """The first firing strictly after ``after`` (epoch seconds), or None if the
        expression never fires again (its years are over)."""
        start = datetime.fromtimestamp(after, UTC).astimezone(zone)
        day = start.date()
        last_year = max(self.years)
        while day.year <= last_year:
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)  # noqa: PLR2004 - after December (12) comes January of the next year
                continue
            if self.day(day):
                found = self._first_time_on(day, after, zone)
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None

    def _first_time_on(self, day: date, after: float, zone: ZoneInfo) -> float | None:
        for hour in self.hours:
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                instant = wall.astimezone(UTC)
                if instant.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
                    continue  # skipped by a DST change: this wall time does not exist
                if instant.timestamp() > after:
                    return instant.timestamp()
        return None


Expression = Rate | Cron


def time_zone(name: object) -> ZoneInfo:
    """The IANA time zone ``name`` (UTC when not given)."""
    if name is None or name == "":
        return ZoneInfo("UTC")
    if not isinstance(name, str):
        raise ClientException(f"scheduleExpressionTimezone must be a string; got {name!r}.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a name too long for a file
        raise ClientException(
            f"scheduleExpressionTimezone {name[:80]!r} is not a time zone: use an IANA name such as "
            "UTC, Europe/Paris or America/New_York."
        ) from e


def parse(expression: object) -> Expression:
    """A rate() or cron() expression; ClientException saying what is wrong otherwise."""
    if not isinstance(expression, str) or not expression:
        raise ClientException("scheduleExpression is required: use rate(...) or cron(...).")
    text = expression.strip()
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("cron("):
        return _parse_cron(text)
    if text.startswith("at("):
        raise ClientException(
            "One-time at() schedules are not supported by batchplane: submit the job "
            "directly, or use rate(...) or cron(...)."
        )
    raise ClientException(
        f"scheduleExpression {expression!r} is not valid: use rate(5 minutes) or {CRON_HELP}."
    )


def next_after(
    expression: Expression, after: float, *, anchor: float, zone: ZoneInfo
) -> float | None:
    """The first firing strictly after ``after``; ``anchor`` is a rate schedule's start."""
    if isinstance(expression, Rate):
        return expression.next_after(after, anchor)
    return expression.next_after(after, zone)


# -- rate -------------------------------------------------------------------------------


def _parse_rate(text: str) -> Rate:
    match = _RATE.match(text)
    if not match:
        raise ClientException(
            f"{text!r} is not a rate expression: use rate(value unit) with a positive whole "
            "value and a unit of minute(s), hour(s) or day(s), for example rate(5 minutes)."
        )
    digits, unit = match.group(1).lstrip("0") or "0", match.group(2)
    singular = unit.removesuffix("s")
    if singular not in RATE_UNITS:
        raise ClientException(f"{text[:80]!r} has unit {unit!r}: use minute(s), hour(s) or day(s).")
    # (int() refuses more than 4,300 digits; 12 are past any period allowed.)
    if len(digits) > 12 or int(digits) * RATE_UNITS[singular] > MAX_RATE_DAYS * RATE_UNITS["day"]:  # noqa: PLR2004 - the comment above says why 12 digits
        raise ClientException(
            f"{text[:60]!r} is a period of more than 100 years: use at most rate({MAX_RATE_DAYS} days)."
        )
    value = int(digits)
    if value < 1:
        raise ClientException(f"{text!r} must have a value of at least 1.")
    if (value == 1) != (unit == singular):
        wanted = f"1 {singular}" if value == 1 else f"{value} {singular}s"
        raise ClientException(
            f"{text!r} is not valid: a value of 1 takes the singular unit and larger values "
            f"the plural; write rate({wanted})."
        )
    return Rate(value * RATE_UNITS[singular])


# -- cron -------------------------------------------------------------------------------


def _parse_cron(text: str) -> Cron:
    match = _CRON.match(text)
    fields = match.group(1).split() if match else []
    if len(fields) != CRON_FIELDS:
        raise ClientException(f"{text!r} has {len(fields)} fields, not 6: {CRON_HELP}.")
    minutes, hours, dom, months, dow, years = fields
    if (dom == "?") == (dow == "?"):
        raise ClientException(
            f"{text!r} is not valid: put ? in exactly one of day-of-month and day-of-week "
            "(for example cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *))."
        )
    day = _day_of_week(dow, text) if dom == "?" else _day_of_month(dom, text)
    return Cron(
        minutes=tuple(sorted(_values(minutes, 0, 59, "minutes", text))),
        hours=tuple(sorted(_values(hours, 0, 23, "hours", text))),
        months=frozenset(_values(months, 1, 12, "month", text, _MONTHS)),
        years=frozenset(_values(years, MIN_YEAR, MAX_YEAR, "year", text)),
        day=day,
    )


def _number(
    token: str, lo: int, hi: int, what: str, text: str, names: dict[str, int] | None
) -> int:
    value = names.get(token.upper()) if names else None
    if value is None:
        if not token.isdigit():
            raise ClientException(
                f"{text!r}: {what} value {token!r} is not valid; {_range(lo, hi, names)}."
            )
        value = int(token)
    if not lo <= value <= hi:
        raise ClientException(
            f"{text!r}: {what} value {token!r} is out of range; {_range(lo, hi, names)}."
        )
    return value


def _range(lo: int, hi: int, names: dict[str, int] | None) -> str:
    spelled = (
        f" or {'-'.join((min(names, key=names.__getitem__), max(names, key=names.__getitem__)))}"
        if names
        else ""
    )
    return f"use {lo}-{hi}{spelled}, lists (a,b), ranges (a-b), * and steps (*/n, a/n)"


def _values(
    field: str, lo: int, hi: int, what: str, text: str, names: dict[str, int] | None = None
) -> set[int]:
    out: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ClientException(
                    f"{text!r}: {what} step {part!r} needs a positive whole step, like */5."
                )
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = (
                _number(a, lo, hi, what, text, names),
                _number(b, lo, hi, what, text, names),
            )
            if first > last:
                raise ClientException(f"{text!r}: {what} range {base!r} must go from low to high.")
        else:
            first = _number(base, lo, hi, what, text, names)
            last = hi if slash else first
        out.update(range(first, last + 1, step))
    return out


def _day_of_month(field: str, text: str) -> DayMatcher:
    if field == "L":
        return lambda d: d.day == _month_days(d)
    if field == "LW":
        return lambda d: d == _nearest_weekday(d.replace(day=_month_days(d)))
    if field.endswith("W") and field[:-1].isdigit():
        wanted = _number(field[:-1], 1, 31, "day-of-month", text, None)
        return lambda d: wanted <= _month_days(d) and d == _nearest_weekday(d.replace(day=wanted))
    days = _values(field, 1, 31, "day-of-month", text)
    return lambda d: d.day in days


def _day_of_week(field: str, text: str) -> DayMatcher:
    if "#" in field:
        wd, _, nth = field.partition("#")
        weekday = _number(wd, 1, 7, "day-of-week", text, _WEEKDAYS)
        n = _number(nth, 1, 5, "day-of-week occurrence (#n)", text, None)
        return lambda d: _weekday(d) == weekday and (d.day - 1) // 7 + 1 == n
    if field == "L":
        return lambda d: _weekday(d) == _WEEKDAYS["SAT"]
    if field.endswith("L"):
        weekday = _number(field[:-1], 1, 7, "day-of-week", text, _WEEKDAYS)
        return lambda d: _weekday(d) == weekday and d.day + 7 > _month_days(d)
    days = _values(field, 1, 7, "day-of-week", text, _WEEKDAYS)
    return lambda d: _weekday(d) in days


def _weekday(d: date) -> int:
    """1 = Sunday ... 7 = Saturday, as cron counts."""
    return d.isoweekday() % 7 + 1


def _month_days(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _nearest_weekday(d: date) -> date:
    """The weekday nearest to ``d`` within its month (the W of cron)."""
    if d.weekday() == calendar.SATURDAY:  # Saturday -> Friday, or Monday when the 1st is a Saturday
        return d - timedelta(days=1) if d.day > 1 else d + timedelta(days=2)
    if d.weekday() == calendar.SUNDAY:  # Sunday -> Monday, or Friday when it is the month's last day
        return d + timedelta(days=1) if d.day < _month_days(d) else d - timedelta(days=2)
    return d
