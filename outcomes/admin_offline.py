"""The admin's off-policy evaluation page (DESIGN.md §5.6, §8): pick a context and a window,
read each policy's estimated value as a table and as an interval chart around the value of
the policy that ran."""

import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from config.admin_format import count, interval, number
from experiments.charts import Interval, interval_chart
from experiments.models import Context
from outcomes.offline import offline_evaluation

ESTIMATORS = (("dr", "Doubly robust"), ("snips", "Self-normalised IPS"), ("ips", "IPS"))


class OfflineForm(forms.Form):
    context = forms.ChoiceField(choices=Context.choices, initial=Context.MISSION)
    window_start = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="First day (UTC) of the two-week window; empty: the last complete window.",
    )


def _row(policy: dict[str, Any]) -> dict[str, Any]:
    cells = []
    for key, _ in ESTIMATORS:
        estimate = policy[key]
        cells.append(
            {
                "value": number(estimate["value"], digits=3),
                "interval": interval(estimate["ci_lower"], estimate["ci_upper"], digits=3),
            }
        )
    return {
        "name": policy["name"],
        "kind": policy["kind"],
        "cells": cells,
        "ess": count(round(policy["effective_sample_size"])),
        "used": count(policy["decisions_used"]),
        "warning": policy["warning"],
    }


def _chart(report: dict[str, Any]) -> str:
    rows = [
        Interval(
            label=policy["name"],
            mean=policy["dr"]["value"],
            low=policy["dr"]["ci_lower"],
            high=policy["dr"]["ci_upper"],
        )
        for policy in report["policies"]
        if policy["reliable"] and policy["dr"]["ci_lower"] is not None
    ]
    return interval_chart(
        rows,
        reference=report["logged"]["value"],
        label="Doubly robust value per decision with 95% intervals; the dashed line is the "
        "policy that ran",
    )


def offline_view(request: HttpRequest) -> HttpResponse:
    form = OfflineForm(request.GET or None)
    report = None
    if form.is_valid():
        window_start: datetime.date | None = form.cleaned_data["window_start"]
        report = offline_evaluation(context=form.cleaned_data["context"], window_start=window_start)
    context = {
        **admin.site.each_context(request),
        "title": "Off-policy evaluation",
        "form": form,
        "report": report,
        "estimators": [label for _, label in ESTIMATORS],
        "rows": [_row(p) for p in report["policies"]] if report else [],
        "chart": _chart(report) if report else "",
        "logged": {
            "value": number(report["logged"]["value"], digits=3),
            "interval": interval(
                report["logged"]["ci_lower"], report["logged"]["ci_upper"], digits=3
            ),
            "decisions": count(report["decisions"]),
            "learners": count(report["learners"]),
        }
        if report
        else None,
    }
    return TemplateResponse(request, "admin/outcomes/offline.html", context)
