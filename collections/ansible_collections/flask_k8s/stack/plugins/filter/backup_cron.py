"""backup_cron_interval: the longest time between two runs of a cron schedule, in seconds.

`status --max-age-seconds` takes the schedule's interval; a CronJob states only its schedule.
The schedule is read as Kubernetes reads a CronJob's (five fields: minute, hour, day of month,
month, day of week; numbers, `*`, ranges, steps, lists, month and day names; `?` as `*`; the
macros @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly). As in cron, a day
matches when both day fields do, or, when both are restricted, when either does. The runs are
laid out over eight years from 2024, which repeats every pattern of months and weekdays, leap
days included; the time zone's daylight-saving shifts (an hour) are not counted.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from ansible.errors import AnsibleFilterError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names from the lowest on) of the five fields.
FIELDS = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
]
START = date(2024, 1, 1)
YEARS = 8


def _value(text: str, low: int, names: list[str], what: str) -> int:
    if text.lower() in names:
        return low + names.index(text.lower())
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a {what}")
    return int(text)


def _field(text: str, what: str, low: int, high: int, names: list[str]) -> tuple[set[int], bool]:
    """The values one field allows, and whether it allows them all (`*`)."""
    values: set[int] = set()
    for part in text.split(","):
        spread, _slash, step_text = part.partition("/")
        step = _value(step_text, 0, [], "step") if step_text else 1
        if step < 1:
            raise ValueError(f"the step of the {what} field must be at least 1")
        if spread in ("*", "?"):
            first, last = low, high
        elif "-" in spread:
            start, _dash, end = spread.partition("-")
            first, last = _value(start, low, names, what), _value(end, low, names, what)
        else:
            first = _value(spread, low, names, what)
            last = high if step_text else first
        if not low <= first <= last <= high:
            raise ValueError(f"{part!r} is outside the {what} field's {low}-{high}")
        values.update(range(first, last + 1, step))
    return values, text in ("*", "?")


def backup_cron_interval(schedule: str) -> int:
    text = MACROS.get(str(schedule).strip().lower(), str(schedule))
    parts = text.split()
    try:
        if len(parts) != 5:
            raise ValueError("a schedule has five fields")
        fields = [_field(part, *spec) for part, spec in zip(parts, FIELDS, strict=True)]
    except ValueError as exc:
        raise AnsibleFilterError(
            f"the backup schedule {schedule!r} cannot be read: {exc}"
        ) from None
    minutes, hours = fields[0][0], fields[1][0]
    (days, any_day), months, (weekdays, any_weekday) = fields[2], fields[3][0], fields[4]
    weekdays = {day % 7 for day in weekdays}
    in_day = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    longest = max((b - a for a, b in itertools.pairwise(in_day)), default=0)
    previous = None
    day = START
    while day < START.replace(year=START.year + YEARS):
        by_date = day.day in days
        by_weekday = day.isoweekday() % 7 in weekdays
        either = not (any_day or any_weekday)
        matches = (by_date or by_weekday) if either else (by_date and by_weekday)
        if day.month in months and matches:
            if previous is not None:
                gap = (day - previous).days * 1440 - in_day[-1] + in_day[0]
                longest = max(longest, gap)
            previous = day
        day += timedelta(days=1)
    if longest == 0:
        raise AnsibleFilterError(
            f"the backup schedule {schedule!r} runs less than twice in eight years"
        )
    return longest * 60


class FilterModule:
    def filters(self) -> dict:
        return {"backup_cron_interval": backup_cron_interval}
