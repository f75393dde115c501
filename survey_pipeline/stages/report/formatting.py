"""Dutch number formatting for printed tables.

Printed numbers follow the annual report: "78%", "45,7%", "39.940". Rounding is
half-up on the decimal value (as Excel displays it), never banker's rounding, so
a number in the HTML report and the same number in the workbook always agree.
(Formula-safe text for CSV files: `report/csv_safety.py`.)
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal

MISSING_TEXT = "-"


def _decimal(value: float | Decimal) -> Decimal:
    """The shortest decimal that round-trips to `value` (0.785 -> Decimal("0.785"))."""
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def round_half_up(value: float | Decimal, decimals: int) -> Decimal:
    """`value` rounded half-up to `decimals` places, computed on its shortest decimal repr."""
    return _decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _dutch(number: Decimal, decimals: int) -> str:
    """Group thousands with "." and use "," as the decimal mark."""
    sign = "-" if number < 0 else ""
    text = f"{abs(number):,.{decimals}f}"
    return sign + text.replace(",", "\u0000").replace(".", ",").replace("\u0000", ".")


def not_measured_text(reason: str | None) -> str:
    """The cell of a wave that was not measured: "-", with the spec's reason if declared ("- (i.v.m. COVID)")."""
    return f"{MISSING_TEXT} ({reason})" if reason else MISSING_TEXT


def format_percent(share: float | None, decimals: int = 0) -> str:
    """A share in [0, 1] as a Dutch percentage: 0.457 -> "46%" (0) or "45,7%" (1); NaN -> "-"."""
    if share is None or not math.isfinite(share):
        return MISSING_TEXT
    return _dutch(round_half_up(_decimal(share) * 100, decimals), decimals) + "%"


def format_points(difference: float | None, decimals: int = 1) -> str:
    """A difference of shares as signed percentage points: 0.032 -> "+3,2"; NaN -> "-"."""
    if difference is None or not math.isfinite(difference):
        return MISSING_TEXT
    rounded = round_half_up(_decimal(difference) * 100, decimals)
    text = _dutch(rounded, decimals)
    return text if rounded < 0 else ("+" + text if rounded > 0 else text)


def format_number(value: float | None, decimals: int = 0) -> str:
    """A count or amount in Dutch notation: 39940 -> "39.940", 1.25 -> "1,3" (1); NaN -> "-"."""
    if value is None or not math.isfinite(value):
        return MISSING_TEXT
    return _dutch(round_half_up(value, decimals), decimals)


def format_p_value(p: float | None) -> str:
    """A p-value as printed in the method tables: "<0,001" or "0,034"."""
    if p is None or not math.isfinite(p):
        return MISSING_TEXT
    return "<0,001" if p < 0.001 else _dutch(round_half_up(p, 3), 3)


_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")


def dutch_target(target: str) -> str:
    """A spec target (">80%", "afname <20%", ">45.5%") with a Dutch decimal comma."""
    return _DECIMAL_POINT.sub(",", target.strip())
