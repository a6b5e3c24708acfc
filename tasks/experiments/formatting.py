"""How experiment numbers are written for people: rounded to what they can tell apart, never a
float's last digits (1.4999999999999996), counts as whole numbers, shares that are small but not
zero never printed as 0%, p-values as p-values."""

from __future__ import annotations

import math


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value, digits: int = 3) -> str:
    """A measurement to ``digits`` significant digits (at least whole units), e.g. 1.5, -0.0312, 1,234."""
    if _missing(value):
        return "n/a" if value is None else ("∞" if value > 0 else "-∞") if math.isinf(value) else "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -4:
        return f"{value:.{digits}g}"
    if magnitude >= digits - 1:
        return f"{value:,.0f}"
    places = max(0, digits - 1 - magnitude)
    text = f"{value:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def signed(value, digits: int = 3) -> str:
    text = number(value, digits)
    return text if text.startswith("-") or text in ("n/a", "0") else f"+{text}"


def count(value) -> str:
    """A count of trades or days: 1,500 (never 1500.0)."""
    return "n/a" if _missing(value) else f"{int(round(value)):,}"


def percent(share, signed_: bool = False) -> str:
    """A share as a percentage; under 1% keeps two significant digits (0.2%, not 0%)."""
    if _missing(share):
        return "n/a"
    value = 100.0 * share
    if value == 0:
        text = "0%"
    elif abs(value) < 1:
        text = f"{number(value, 2)}%"
    elif 99.5 <= abs(value) < 100:  # almost sure, but not sure: never "100%"
        text = f"{value:.1f}%" if abs(value) < 99.95 else (f"{value:.2f}%" if abs(value) < 99.995 else ">99.99%")
    else:
        text = f"{value:,.1f}%" if abs(value) < 10 else f"{value:,.0f}%"
    return f"+{text}" if signed_ and value > 0 and not text.startswith(">") else text


def p_value(p) -> str:
    """0.0312, 0.00041, 3e-08, <1e-300."""
    if _missing(p):
        return "n/a"
    if p == 0:
        return "<1e-300"
    if p >= 0.001:
        return number(p, 2)
    return f"{p:.1g}" if p < 1e-4 else f"{p:.2g}"
