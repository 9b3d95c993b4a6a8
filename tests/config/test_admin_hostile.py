"""Every admin form, fed hostile values. Each POST changes one field of a submission that
saves; the answer is the form again with errors (200) or a save (302), never a 500, and no
save breaks a rule the API keeps: one active baseline per context, preferences and params
that validate, experiments untouched once they left DRAFT.

The walk covers every registered ModelAdmin (admin.site._registry), so an admin added later
is walked too: a model that can be added needs a valid submission in `add_submissions`.
Every POST runs in a savepoint that is rolled back, so each starts from the same rows."""

import contextlib
import datetime
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.forms import ReadOnlyPasswordHashField
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.forms.models import InlineForeignKeyField
from django.template.base import Template
from django.test import RequestFactory
from django.test.utils import _TestState
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from experiments.models import Context, Experiment, Strategy, Variant, WebhookEndpoint, WebhookEvent
from experiments.params import params_errors
from experiments.services.experiments import MAX_WEIGHT
from experiments.services.webhooks import webhook_endpoint_create, webhook_event_emit
from logs.models import AuditEvent
from logs.services import model_snapshot
from personalization.api.serializers import PreferencesSerializer
from personalization.models import Preferences, User
from personalization.services.preferences import EDITABLE_FIELDS as PREFERENCE_FIELDS
from recommendations.models import ContentItem
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory
from tests.personalization.test_privacy import ROW_MAKERS

ABSENT = object()  # the field left out of the submission (an unchecked box)

HOSTILE: dict[str, list[Any]] = {
    "text": ["", "x" * 20_000, "a\x00b", "\u202e💥<script>" * 300],
    "password": ["", "x" * 20_000, "a\x00b"],
    "integer": ["", "-1", "9" * 40, "1e999"],
    "float": ["", "-1", "1e308", "NaN"],
    "json": [
        "",
        "5",
        '{"a": 1}',
        '{"a": NaN}',
        '["\\u0000"]',
        '{"\\ud800": 1}',
        "[" * 5000 + "]" * 5000,
    ],
    "choice": ["", "UNKNOWN"],
    "model_choice": ["", "999999999", "abc", "a\x00b"],
    "model_multiple": [["999999999"], ["abc", "a\x00b"]],
    "boolean": [ABSENT, "on"],  # the walk posts the one that flips the box
    "datetime": [
        ("2026-02-30", "12:00:00"),
        ("9999-12-31", "23:59:59"),
        ("0001-01-01", "00:00:00"),
    ],
    "management": ["", "-1", "100000", "0"],
}


def field_kind(field: forms.Field) -> str | None:
    """The hostile values that fit a form field, by its type (None: not submitted)."""
    if field.disabled or isinstance(field, ReadOnlyPasswordHashField | InlineForeignKeyField):
        return None
    kinds: list[tuple[type[forms.Field], str]] = [
        (forms.SplitDateTimeField, "datetime"),
        (forms.ModelMultipleChoiceField, "model_multiple"),
        (forms.ModelChoiceField, "model_choice"),
        (forms.JSONField, "json"),
        (forms.BooleanField, "boolean"),
        (forms.NullBooleanField, "boolean"),
        (forms.ChoiceField, "choice"),
        (forms.FloatField, "float"),
        (forms.DecimalField, "float"),
        (forms.IntegerField, "integer"),
    ]
    for form_class, kind in kinds:
        if isinstance(field, form_class):
            return kind
    return "password" if isinstance(field.widget, forms.PasswordInput) else "text"


class _FormData(HTMLParser):
    """What a browser submits for the admin's form: named inputs, checked boxes, selected
    options, textareas (the inline formsets' empty templates left out)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, Any] = {}
        self._select: tuple[str, bool] | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def _add(self, name: str, value: str, *, multiple: bool = False) -> None:
        if "__prefix__" in name:
            return
        if multiple:
            self.data.setdefault(name, []).append(value)
        else:
            self.data[name] = value

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = attr.get("id") == self.form_id
        if not self.inside or ("name" not in attr and tag != "option"):
            return
        if tag == "input":
            kind = attr.get("type", "text")
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in attr:
                    self._add(attr["name"], attr.get("value") or "on", multiple=kind == "checkbox")
                return
            self._add(attr["name"], attr.get("value", ""))
        elif tag == "select":
            self._select = (attr["name"], "multiple" in attr)
            self._first_option = None
            if "multiple" in attr:
                self.data.setdefault(attr["name"], [])
        elif tag == "option" and self._select is not None:
            name, multiple = self._select
            value = attr.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in attr:
                self._add(name, value, multiple=multiple)
        elif tag == "textarea":
            self._textarea = attr["name"]
            self._add(attr["name"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            name, multiple = self._select
            if not multiple and name not in self.data and self._first_option is not None:
                self._add(name, self._first_option)
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and "__prefix__" not in self._textarea:
            self.data[self._textarea] += data


def submission(response: Any, model: type[models.Model]) -> dict[str, Any]:
    parser = _FormData(f"{model._meta.model_name}_form")
    parser.feed(response.content.decode())
    data = parser.data
    for name, value in data.items():
        if isinstance(value, str) and value.startswith("\n"):  # a textarea's first newline
            data[name] = value[1:]
    return data


def hostile_fields(response: Any, data: dict[str, Any]) -> dict[str, str]:
    """{name as submitted: kind} for the page's form, its inline management forms and the
    last row of each inline (on the page or added by the submission; the rows of an inline
    are one form, so one row stands for all)."""
    fields: dict[str, str] = {}
    for name, form_field in response.context["adminform"].form.fields.items():
        kind = field_kind(form_field)
        if kind is not None:
            fields[name] = kind
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        fields[f"{formset.prefix}-TOTAL_FORMS"] = "management"
        fields[f"{formset.prefix}-INITIAL_FORMS"] = "management"
        row = re.compile(rf"{re.escape(formset.prefix)}-(\d+)-")
        rows = {int(m.group(1)) for name in data if (m := row.match(name))}
        rows |= set(range(formset.total_form_count()))
        if not rows:
            continue
        for name, form_field in formset.empty_form.fields.items():
            kind = field_kind(form_field)
            if kind is not None:
                fields[f"{formset.prefix}-{max(rows)}-{name}"] = kind
    return fields


def with_value(data: dict[str, Any], name: str, kind: str, value: Any) -> dict[str, Any]:
    changed = dict(data)
    if kind == "datetime":
        changed[f"{name}_0"], changed[f"{name}_1"] = value
    elif value is ABSENT:
        changed.pop(name, None)
    else:
        changed[name] = value
    return changed


# --- Invariants -------------------------------------------------------------------------


def experiments_past_draft() -> dict[int, Any]:
    return {
        experiment.pk: (
            model_snapshot(experiment),
            sorted(
                json.dumps(model_snapshot(v), sort_keys=True) for v in experiment.variants.all()
            ),
        )
        for experiment in Experiment.objects.exclude(status=Experiment.Status.DRAFT)
    }


def broken_invariants(past_draft: dict[int, Any] | None, since: datetime.datetime) -> list[str]:
    """The rules a save must keep; rows saved at or after `since` are full_clean()ed.
    `past_draft`, when given, are the experiments that must not have changed."""
    problems = []
    for context in Context.values:
        baselines = list(
            Strategy.objects.filter(context=context, is_baseline=True).values_list(
                "is_active", flat=True
            )
        )
        if baselines != [True]:
            problems.append(f"{context}: baselines (is_active) {baselines}")
    for strategy in Strategy.objects.all():
        if errors := params_errors(strategy.context, strategy.default_params, complete=True):
            problems.append(f"strategy {strategy.pk} default_params: {errors}")
    for variant in Variant.objects.select_related("experiment", "strategy"):
        context = variant.experiment.context
        if not isinstance(variant.params, dict):
            problems.append(f"variant {variant.pk} params: {variant.params!r} is no object")
        elif errors := params_errors(context, variant.params, complete=False):
            problems.append(f"variant {variant.pk} params: {errors}")
        if variant.strategy.context != context:
            problems.append(f"variant {variant.pk}: strategy of {variant.strategy.context}")
        if not (math.isfinite(variant.weight) and 0 <= variant.weight <= MAX_WEIGHT):
            problems.append(f"variant {variant.pk}: weight {variant.weight}")
    for preferences in Preferences.objects.all():
        try:
            preferences.full_clean()
        except ValidationError as exc:
            problems.append(f"preferences {preferences.pk}: {exc.messages}")
        as_api = PreferencesSerializer(
            data={name: getattr(preferences, name) for name in PREFERENCE_FIELDS}
        )
        if not as_api.is_valid():
            problems.append(f"preferences {preferences.pk}: {as_api.errors}")
    for model in (User, ContentItem, Strategy, Experiment, WebhookEndpoint):
        for obj in model._default_manager.filter(updated_at__gte=since):
            try:
                obj.full_clean(exclude=["password"])
            except ValidationError as exc:
                problems.append(f"{model._meta.label_lower} {obj.pk}: {exc.messages}")
    if past_draft is not None and experiments_past_draft() != past_draft:
        problems.append("an experiment past DRAFT was edited")
    return problems


FINGERPRINTED = (
    Group,
    Token,
    User,
    Preferences,
    Strategy,
    Experiment,
    Variant,
    ContentItem,
    WebhookEndpoint,
    AuditEvent,
    LogEntry,
)


def fingerprint() -> tuple[Any, ...]:
    """Enough of the walked tables to see that a request stored nothing (every admin save
    also writes a LogEntry and an AuditEvent), read in one query."""
    parts = []
    for model in FINGERPRINTED:
        table = connection.ops.quote_name(model._meta.db_table)
        names = {f.name for f in model._meta.concrete_fields}
        stamp = connection.ops.quote_name(
            "updated_at" if "updated_at" in names else model._meta.pk.column
        )
        parts.append(f"(SELECT COUNT(*) FROM {table}), (SELECT MAX({stamp}) FROM {table})")  # noqa: S608 (model tables, no input)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        return tuple(cursor.fetchone())


# --- The walk ---------------------------------------------------------------------------


@contextlib.contextmanager
def plain_template_rendering() -> Iterator[None]:
    """Render without the test environment's instrumentation, which copies the context of
    every template (each admin widget is one) for `response.context`: a third of each
    POST's time, and the walk reads no context from its POSTs."""
    original = getattr(getattr(_TestState, "saved_data", None), "template_render", None)
    if original is None:
        yield
        return
    instrumented = Template._render
    Template._render = original
    try:
        yield
    finally:
        Template._render = instrumented


class _Undo(Exception):
    pass


@dataclass
class Walk:
    client: Any
    past_draft: dict[int, Any] | None = field(default_factory=experiments_past_draft)
    stored: tuple[Any, ...] = field(default_factory=fingerprint)
    posts: int = 0
    failures: list[str] = field(default_factory=list)

    def post(
        self, url: str, data: dict[str, Any], label: str, expected: tuple[int, ...] = (200, 302)
    ) -> int:
        """POST in a savepoint that is rolled back. A 302 must keep the invariants, any
        other answer must have stored nothing; an unexpected status (a 500 with its
        exception) is recorded."""
        self.posts += 1
        since = timezone.now()
        try:
            with transaction.atomic():
                with plain_template_rendering():
                    response = self.client.post(url, data)
                status = response.status_code
                if status not in expected:
                    exc = (getattr(response, "exc_info", None) or (None, None))[1]
                    self.failures.append(f"{label}: {status} {exc!r}"[:500])
                elif status == 302:
                    for problem in broken_invariants(self.past_draft, since):
                        self.failures.append(f"{label}: saved, {problem}"[:500])
                elif fingerprint() != self.stored:
                    self.failures.append(f"{label}: {status}, but something was stored")
                raise _Undo
        except _Undo:
            pass
        return status

    def fields(self, url: str, data: dict[str, Any], fields: dict[str, str], label: str) -> None:
        for name, kind in sorted(fields.items()):
            values = HOSTILE[kind]
            if kind == "boolean":
                values = [ABSENT if name in data else "on"]
            for value in values:
                changed = with_value(data, name, kind, value)
                self.post(url, changed, f"{label} {name}={repr(value)[:40]}")


def add_submissions(strategies: dict[str, Strategy], token_user: User) -> dict[str, dict]:
    """A valid submission of each add form (the walk changes one field at a time)."""
    mission = {"timing": "flexible", "duration": 30, "objectives": 3, "difficulty": "medium"}
    return {
        "auth.group": {"name": "Walkers"},
        "authtoken.tokenproxy": {"user": str(token_user.pk)},
        "experiments.strategy": {
            "context": "MISSION",
            "key": "walk_strategy",
            "name": "Walk",
            "default_params": json.dumps(mission),
            "is_active": "on",
        },
        "experiments.experiment": {
            "name": "Walk experiment",
            "experiment_type": "AB_TEST",
            "context": "MISSION",
            "variants-TOTAL_FORMS": "2",
            "variants-0-key": "control",
            "variants-0-name": "Control",
            "variants-0-strategy": str(strategies["conservative"].pk),
            "variants-0-params": "{}",
            "variants-0-weight": "1",
            "variants-0-is_control": "on",
            "variants-1-key": "treatment",
            "variants-1-name": "Treatment",
            "variants-1-strategy": str(strategies["balanced"].pk),
            "variants-1-params": '{"duration": 45}',
            "variants-1-weight": "1",
        },
        "experiments.holdout": {
            "name": "Walk holdout",
            "percent": "5",
            "salt": "walk-salt",
            "is_active": "on",
        },
        "personalization.user": {
            "username": "walker",
            "usable_password": "true",
            "password1": "a-Walk-password-91",
            "password2": "a-Walk-password-91",
        },
        "experiments.webhookendpoint": {
            "name": "Walk hook",
            "url": "https://hooks.example.com/attune",
            "events": ["experiment.started", "user.erased"],
            "is_active": "on",
        },
        "recommendations.contentitem": {
            "key": "walk-item",
            "title": "Walk",
            "skill": "testing",
            "content_type": "QUIZ",
            "difficulty": "3",
            "duration_minutes": "10",
            "is_active": "on",
        },
    }


@pytest.fixture
def hostile_world(client, staff_user, strategy_catalog, content_catalog):
    """Rows of every registered model, a learner with stored preferences, a DRAFT and an
    ACTIVE experiment, and the objects whose change forms are walked."""
    learner = UserFactory(external_id="walk-learner", software_background={"level": "BEGINNER"})
    Preferences.objects.create(user=learner, goals=["algebra"])
    Token.objects.create(user=learner)
    everything = UserFactory(external_id="walk-everything")
    for make in ROW_MAKERS.values():  # an ACTIVE MISSION experiment among them
        make(everything)
    draft = make_experiment(context="MISSION", start=False, name="Walk draft")
    # Port 1 on 127.0.0.1: nothing listens, so an attempt fails at once.
    hook = webhook_endpoint_create(
        actor=None,
        data={"name": "Walk receiver", "url": "http://127.0.0.1:1/hook", "events": ["user.erased"]},
    )
    webhook_event_emit(event=WebhookEvent.USER_ERASED, payload={"user": {"id": learner.pk}})

    targets = {
        "personalization.user": [learner],
        "experiments.strategy": list(
            Strategy.objects.filter(context="MISSION", key__in=["conservative", "balanced"])
        ),
        "experiments.experiment": list(Experiment.objects.order_by("pk")),
        "auth.group": [Group.objects.create(name="Reviewers")],
        "experiments.webhookendpoint": [hook],
    }
    client.force_login(staff_user)
    client.raise_request_exception = False  # a 500 is recorded with its exception
    strategies = {s.key: s for s in Strategy.objects.filter(context="MISSION")}
    return {
        "client": client,
        "staff": staff_user,
        "targets": targets,
        "draft": draft,
        "adds": add_submissions(strategies, token_user=UserFactory(external_id="walk-tokenless")),
    }


def _request(staff: User) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = staff
    return request


def test_admin_walk__hostile_values__no_500_and_no_broken_invariant(hostile_world):
    client, staff = hostile_world["client"], hostile_world["staff"]
    request = _request(staff)
    walk = Walk(client=client)
    assert walk.past_draft, "the walk needs an experiment past DRAFT"
    assert not broken_invariants(walk.past_draft, since=timezone.now())
    walked: set[str] = set()

    for model, model_admin in sorted(admin.site._registry.items(), key=lambda i: i[0]._meta.label):
        label = model._meta.label_lower
        info = (model._meta.app_label, model._meta.model_name)
        assert client.get(reverse("admin:{}_{}_changelist".format(*info))).status_code == 200, label

        add_url = reverse("admin:{}_{}_add".format(*info))
        if model_admin.has_add_permission(request):
            walked.add(label)
            page = client.get(add_url)
            assert page.status_code == 200, label
            assert label in hostile_world["adds"], f"add a valid submission for {label}"
            data = submission(page, model) | hostile_world["adds"][label]
            status = walk.post(add_url, data, f"{label} add (valid)")
            assert status == 302, (label, walk.failures, data)
            walk.fields(add_url, data, hostile_fields(page, data), f"{label} add")
        else:
            assert client.get(add_url).status_code == 403, label

        objects = hostile_world["targets"].get(label) or list(
            model_admin.get_queryset(request).order_by("pk")[:1]
        )
        for obj in objects:
            change_url = reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
            page = client.get(change_url)
            assert page.status_code == 200, (label, obj.pk)
            if not model_admin.has_change_permission(request, obj):
                walk.post(change_url, submission(page, model), f"{label} {obj.pk}", (403,))
                continue
            walked.add(label)
            data = submission(page, model)
            status = walk.post(change_url, data, f"{label} {obj.pk} change (unchanged)")
            assert status == 302, (label, obj.pk, walk.failures)
            walk.fields(change_url, data, hostile_fields(page, data), f"{label} {obj.pk} change")

    assert walk.failures == [], "\n".join(walk.failures[:50])
    assert walked >= {
        "auth.group",
        "authtoken.tokenproxy",
        "experiments.experiment",
        "experiments.strategy",
        "experiments.webhookendpoint",
        "personalization.user",
        "recommendations.contentitem",
    }, walked
    assert walk.posts > 400, walk.posts  # the walk shrinking silently would prove nothing


def test_admin_walk__reaches_the_inline_rows(hostile_world):
    """The walk posts hostile values into the inline rows: the DRAFT's variants, the rows an
    added experiment submits, and the learner's stored preferences."""
    client = hostile_world["client"]
    page = client.get(
        reverse("admin:experiments_experiment_change", args=[hostile_world["draft"].pk])
    )
    fields = hostile_fields(page, submission(page, Experiment))
    assert fields["variants-1-params"] == "json"
    assert fields["variants-1-strategy"] == "model_choice"
    assert "variants-0-params" not in fields
    page = client.get(reverse("admin:experiments_experiment_add"))
    added = submission(page, Experiment) | hostile_world["adds"]["experiments.experiment"]
    assert hostile_fields(page, added)["variants-1-weight"] == "float"
    learner = hostile_world["targets"]["personalization.user"][0]
    page = client.get(reverse("admin:personalization_user_change", args=[learner.pk]))
    data = submission(page, User)
    fields = hostile_fields(page, data)
    assert fields["preferences-0-disabled_features"] == "json"
    assert fields["preferences-0-daily_minutes"] == "integer"
    assert re.fullmatch(r"\d+", data["preferences-0-id"])


def test_admin_actions__every_action_on_every_object__no_500(hostile_world):
    """The actions (start, complete, cancel, evaluate…) on each object alone and on all at
    once: the service's refusal is a message, never a 500, and no invariant breaks."""
    client, staff = hostile_world["client"], hostile_world["staff"]
    request = _request(staff)
    walk = Walk(client=client, past_draft=None)  # the lifecycle actions change experiments
    acted = 0
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda i: i[0]._meta.label):
        actions = [name for name in model_admin.get_actions(request) if name != "delete_selected"]
        pks = list(model_admin.get_queryset(request).order_by("pk").values_list("pk", flat=True))
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for action in actions:
            for selected in [*([pk] for pk in pks), pks]:
                acted += 1
                data = {"action": action, "_selected_action": [str(pk) for pk in selected]}
                walk.post(url, data, f"{model._meta.label_lower} {action} {selected}")
    assert walk.failures == [], "\n".join(walk.failures[:50])
    assert acted >= 10, acted
