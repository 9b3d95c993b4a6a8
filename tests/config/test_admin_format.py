"""config.admin_format: the admin's one way of writing figures (DESIGN.md §8)."""

import datetime
import math

import pytest

from config import admin_format as fmt


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.8000000000000002, "0.8"),
        (0.123456, "0.123"),
        (0.5125, "0.512"),  # round half to even on the binary value
        (12345.6, "12,346"),
        (1.0, "1"),
        (-0.5, "−0.5"),
        (0, "0"),
        (0.0001234, "1.23 × 10⁻⁴"),
        (9.9996e-5, "1 × 10⁻⁴"),
        (None, "—"),
        (math.nan, "—"),
        (math.inf, "—"),
        ("not a number", "—"),
        (True, "—"),
    ],
)
def test_number__three_significant_digits__undefined_is_a_dash(value, expected):
    assert fmt.number(value) == expected


def test_number__sign_and_kept_zeros():
    assert fmt.number(0.0437, sign=True) == "+0.0437"
    assert fmt.number(-0.0437, sign=True) == "−0.0437"
    assert fmt.number(0.0, sign=True) == "+0"
    assert fmt.number(0.43, trim=False) == "0.430"


def test_interval_and_plus_minus__same_precision_at_both_ends():
    assert fmt.interval(0.43, 0.458) == "[0.430, 0.458]"
    assert fmt.interval(-0.00166, 0.089, sign=True) == "[−0.00166, +0.0890]"
    assert fmt.interval(None, 0.5) == "—"
    assert fmt.plus_minus(0.5123, 0.48, 0.54) == "0.512 ± 0.03"
    assert fmt.plus_minus(0.5123, None, None) == "0.512"
    assert fmt.plus_minus(None, 0.1, 0.2) == "—"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0000000000000011630261408257713, "< 0.001"),
        (0.00099, "< 0.001"),
        (0.001, "0.001"),
        (0.0342, "0.034"),
        (0.5, "0.500"),
        (0.9996, "> 0.999"),
        (1.0, "1.000"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_p_value__below_a_thousandth_else_three_decimals(value, expected):
    assert fmt.p_value(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.9995, "> 99.9 %"),
        (0.99999999, "> 99.9 %"),
        (1.0, "100 %"),
        (0.0, "0 %"),
        (0.0004, "< 0.1 %"),
        (0.5, "50.0 %"),
        (0.8281, "82.8 %"),
        (None, "—"),
    ],
)
def test_probability__never_a_certainty_it_is_not(value, expected):
    assert fmt.probability(value) == expected


def test_percent__one_decimal_signed_or_already_in_percent():
    assert fmt.percent(0.1234) == "12.3 %"
    assert fmt.percent(0.098, sign=True) == "+9.8 %"
    assert fmt.percent(-0.013, sign=True) == "−1.3 %"
    assert fmt.percent(-0.0004, sign=True) == "+0.0 %"
    assert fmt.percent(12.34, of_hundred=True) == "12.3 %"
    assert fmt.percent(None) == "—"
    assert fmt.percent_interval(-0.012, 0.084) == "[−1.2 %, +8.4 %]"
    assert fmt.percent_interval(None, 0.084) == "—"


def test_count__thousands_separators():
    assert fmt.count(1652) == "1,652"
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.count(0) == "0"
    assert fmt.count(None) == "—"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.35, "350 ms"),
        (0.0004, "0.4 ms"),
        (12.3, "12 s"),
        (600, "10 min"),
        (5 * 3600 + 20 * 60, "5 h 20 min"),
        (86400, "1 day"),
        (3 * 86400 + 4 * 3600, "3 days 4 h"),
        (14 * 86400, "2 weeks"),
        (20 * 86400, "20 days"),
        (-1, "—"),
        (None, "—"),
    ],
)
def test_duration__largest_units_that_say_it(seconds, expected):
    assert fmt.duration(seconds) == expected


def test_duration__timedelta_days_and_milliseconds():
    assert fmt.duration(datetime.timedelta(days=14)) == "2 weeks"
    assert fmt.days(13.57) == "13 days 14 h"
    assert fmt.days(0) == "under a minute"
    assert fmt.milliseconds(3.4) == "3.4 ms"
    assert fmt.milliseconds(1500) == "1.5 s"


def test_dates_and_score():
    moment = datetime.datetime(2026, 11, 16, 14, 5, tzinfo=datetime.UTC)
    assert fmt.date(moment) == "16 Nov 2026"
    assert fmt.moment(moment) == "16 Nov 2026 14:05"
    assert fmt.date(None) == "—"
    assert fmt.score(63.456) == "63.5"
    assert fmt.listing(["a", "b", "c"]) == "a, b and c"


def test_p_values_in_text__formatted_like_p_value():
    text = "The covariate differs (p = 0.00076): check. Mismatch (p = 1.2e-05), ok (p = 0.25)."
    assert fmt.p_values_in_text(text) == (
        "The covariate differs (p < 0.001): check. Mismatch (p < 0.001), ok (p = 0.250)."
    )
