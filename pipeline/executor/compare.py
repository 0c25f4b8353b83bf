"""Output comparison in the parent, with LiveCodeBench's rules (lcb_runner/evaluation/testing_util.py).

stdio: both texts are stripped and split into lines, each line stripped; the line counts must agree; a line
matches when equal, or when both lines parse as whitespace-separated ``Decimal`` tokens that are equal
(so ``0.50`` matches ``0.5``, but ``0.333`` does not match ``0.3333``).

call: the JSON of the return value (tuples became lists when the child encoded it) must equal the
expected JSON. LiveCodeBench compares with ``==``; we additionally accept floats within 1e-9 (relative or
absolute) anywhere in the structure, which only forgives representation noise such as 0.1 + 0.2.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

FLOAT_TOLERANCE = 1e-9


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdio_mismatch(actual: str, expected: str) -> str | None:
    """None when ``actual`` is accepted for ``expected``; else a short reason."""
    got, want = _stripped_lines(actual), _stripped_lines(expected)
    if len(got) != len(want):
        return f"wrong answer: {len(got)} output lines, expected {len(want)}"
    for number, (line, wanted) in enumerate(zip(got, want, strict=True), 1):
        if line == wanted:
            continue
        as_decimals = _decimals(line)
        if as_decimals is not None and as_decimals == _decimals(wanted):
            continue
        return f"wrong answer on line {number}: got {line[:80]!r}, expected {wanted[:80]!r}"
    return None


def values_equal(actual: Any, expected: Any) -> bool:
    """Python ``==`` of JSON values (as LiveCodeBench), plus a float tolerance anywhere in the structure."""
    if actual == expected:
        return True
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        if isinstance(actual, float) or isinstance(expected, float):
            if math.isnan(actual) and math.isnan(expected):
                return True
            return math.isclose(actual, expected, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
        return False
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(values_equal, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(values_equal(actual[k], expected[k]) for k in actual)
    return False
