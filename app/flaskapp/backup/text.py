"""How figures read in the tool's sentences."""

from __future__ import annotations


def mib(size: float) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def records(number: int) -> str:
    return count(number, "record", "records")
