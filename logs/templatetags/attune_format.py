"""The admin's number formats as template filters (`{% load attune_format %}`): each filter is
the function of config.admin_format with the same name, so templates and Python code read
alike, e.g. `{{ value|p_value }}`, `{{ lift|percent:"sign" }}`, `{{ chance|probability }}`."""

from typing import Any

from django import template

from config import admin_format

register = template.Library()


@register.filter
def number(value: Any, digits: Any = 3) -> str:
    return admin_format.number(value, digits=int(digits))


@register.filter
def signed(value: Any) -> str:
    return admin_format.number(value, sign=True)


@register.filter
def p_value(value: Any) -> str:
    return admin_format.p_value(value)


@register.filter
def percent(value: Any, option: str = "") -> str:
    """`option` is "sign" (a lift) or "of_hundred" (already in percent), or both, joined by a
    comma."""
    options = {part.strip() for part in option.split(",")}
    return admin_format.percent(value, sign="sign" in options, of_hundred="of_hundred" in options)


@register.filter
def probability(value: Any) -> str:
    return admin_format.probability(value)


@register.filter
def count(value: Any) -> str:
    return admin_format.count(value)


@register.filter
def score(value: Any) -> str:
    return admin_format.score(value)


@register.filter
def days(value: Any) -> str:
    return admin_format.days(value)


@register.filter
def duration(value: Any) -> str:
    return admin_format.duration(value)


@register.filter
def moment(value: Any) -> str:
    return admin_format.moment(value)
