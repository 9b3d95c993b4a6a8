import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import msgspec
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request

from config.api.serializers import (
    FUTURE_TOLERANCE,
    FiniteFloatField,
    SafeDateTimeField,
    StrictSerializer,
    datetime_error,
    not_in_future,
)
from config.errors import PayloadTooLargeError
from experiments.models import Context, Experiment
from experiments.params import CONTENT_TYPES
from outcomes.models import SCORE_FIELDS, Effectiveness, Outcome
from outcomes.services import ingest


def score() -> FiniteFloatField:
    return FiniteFloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True, places=9)


class OutcomeInputSerializer(StrictSerializer):
    event_id = serializers.CharField(max_length=64)
    decision = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    context = serializers.ChoiceField(choices=Context.choices, required=False)  # type: ignore[assignment]
    strategy = serializers.SlugField(max_length=40, required=False)
    personalization_applied = serializers.BooleanField(
        required=False, allow_null=True, default=None
    )
    outcome_type = serializers.ChoiceField(choices=Outcome.Type.choices)
    occurred_at = SafeDateTimeField(required=False, validators=[not_in_future])
    retention_score = score()
    performance_score = score()
    completion_rate = score()
    engagement_score = score()
    session_duration_minutes = FiniteFloatField(
        required=False, allow_null=True, min_value=0.0, max_value=24 * 60
    )
    content_type = serializers.ChoiceField(choices=CONTENT_TYPES, required=False, allow_blank=True)
    difficulty_level = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=5
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if all(attrs.get(name) is None for name in SCORE_FIELDS):
            raise serializers.ValidationError(
                "Give at least one score: " + ", ".join(SCORE_FIELDS) + ".", code="no_score"
            )
        if attrs.get("decision") is None and not attrs.get("context"):
            raise serializers.ValidationError(
                {"context": "Give the decision, or at least the context."}
            )
        # occurred_at stays absent when not given: a retry must hash to the same payload.
        return attrs


if TYPE_CHECKING:
    ContextName: TypeAlias = str
    OutcomeTypeName: TypeAlias = str
    ContentTypeName: TypeAlias = str
else:
    # Literal types from the choices: msgspec checks them by a hash lookup.
    ContextName = Literal[tuple(Context.values)]
    OutcomeTypeName = Literal[tuple(Outcome.Type.values)]
    ContentTypeName = Literal[("", *CONTENT_TYPES)]  # ChoiceField(allow_blank=True)


Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class OutcomeInput(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The canonical spelling of what OutcomeInputSerializer accepts, checked by compiled
    code (msgspec) instead of a serializer per item: numbers as JSON numbers, booleans as
    JSON booleans, date-times as RFC 3339 with an offset. A body of this shape gives the same
    data as the serializer; any other body, valid or not, goes through the serializer, which
    also words every error (outcome_inputs)."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    outcome_type: OutcomeTypeName
    decision: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None
    context: ContextName | msgspec.UnsetType = msgspec.UNSET
    # Django's validate_slug, and SlugField's max_length.
    strategy: (
        Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[-a-zA-Z0-9_]+\Z")]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    personalization_applied: bool | None = None
    # What Django's parse_datetime reads with datetime.fromisoformat, with an offset.
    occurred_at: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    retention_score: Score | None = None
    performance_score: Score | None = None
    completion_rate: Score | None = None
    engagement_score: Score | None = None
    session_duration_minutes: Annotated[float, msgspec.Meta(ge=0.0, le=24 * 60)] | None = None
    content_type: ContentTypeName | msgspec.UnsetType = msgspec.UNSET
    difficulty_level: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None


def outcome_inputs(request: Request) -> tuple[list[dict[str, Any]], bool]:
    """The validated items of an outcomes request body and whether it was a list, as
    OutcomeInputSerializer gives them. A JSON body in OutcomeInput's canonical spelling is
    decoded and validated by compiled code in one pass; the project's JSON parser and the
    serializer decide (and word the errors) for every other body. A list of more than
    MAX_BATCH items is a 413 before any item is validated."""
    decoded = _canonical_body(request)
    if decoded is not None:
        many = isinstance(decoded, list)
        structs = decoded if isinstance(decoded, list) else [decoded]
        _refuse_too_many(len(structs) if many else 1)
        items = _checked(structs)
        if items is not None:
            return items, many
    data = request.data
    many = isinstance(data, list)
    _refuse_too_many(len(data) if many else 1)
    payload = OutcomeInputSerializer(data=data, many=many)
    payload.is_valid(raise_exception=True)
    return (list(payload.validated_data) if many else [dict(payload.validated_data)]), many


def _refuse_too_many(count: int) -> None:
    if count > ingest.MAX_BATCH:
        raise PayloadTooLargeError(
            f"{count} outcomes in one request; send at most {ingest.MAX_BATCH}."
        )


_DECODER = msgspec.json.Decoder(list[OutcomeInput] | OutcomeInput)


def _canonical_body(request: Request) -> list[OutcomeInput] | OutcomeInput | None:
    """The body as OutcomeInput structs, or None when it is not UTF-8 JSON in the canonical
    spelling. What the JSON parser refuses never decodes here either (NaN and Infinity,
    numbers beyond a float, lone surrogates), except NUL characters, which _checked
    refuses. Like the parser, a repeated key keeps its last value."""
    django_request = request._request
    if django_request.content_type != "application/json" or (
        django_request.encoding or "utf-8"
    ).lower().replace("_", "-") not in {"utf-8", "utf8"}:
        return None
    try:
        return _DECODER.decode(django_request.body)
    except (msgspec.DecodeError, RawPostDataException):
        return None


def _checked(structs: list[OutcomeInput]) -> list[dict[str, Any]] | None:
    """OutcomeInputSerializer's validated data for canonical items, or None when the
    serializer has to decide (it trims ids, refuses NUL characters and bodies without a
    score or without decision and context, rounds scores to 9 places)."""
    # omit_defaults: a key is there only with a value that is not None.
    items: list[dict[str, Any]] = msgspec.to_builtins(structs)
    event_ids = [item["event_id"] for item in items]
    if "\x00" in "".join(event_ids) or any(e.strip() != e for e in event_ids):
        return None
    if not all(item.keys() & _ATTRIBUTED_BY for item in items):
        return None  # neither decision nor context
    if not all(item.keys() & _SCORES for item in items):
        return None  # no score
    for name in _SCORES.intersection(set().union(*items)):  # the scores anyone sent
        for item in items:
            value = item.get(name)
            if value is not None:
                item[name] = round(value, 9)  # FiniteFloatField(places=9)
    if any("occurred_at" in item for item in items):
        zone = timezone.get_current_timezone()
        latest = timezone.now() + FUTURE_TOLERANCE
        for item in items:
            if "occurred_at" in item:
                moment = _moment(item["occurred_at"], zone, latest)
                if moment is None:
                    return None
                item["occurred_at"] = moment
    return items


_ATTRIBUTED_BY = frozenset({"decision", "context"})
_SCORES = frozenset(SCORE_FIELDS)


def _moment(text: str, zone: Any, latest: datetime.datetime) -> datetime.datetime | None:
    """SafeDateTimeField and not_in_future for an RFC 3339 string; None when they refuse it."""
    try:
        written = datetime.datetime.fromisoformat(text)
        moment = written.astimezone(zone)  # DateTimeField.enforce_timezone
    except (ValueError, OverflowError):
        return None
    if datetime_error(written) or datetime_error(moment) or moment > latest:
        return None
    return moment


class OutcomeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Outcome
        fields = [
            "id",
            "event_id",
            "decision",
            "context",
            "strategy_variant",
            "experiment",
            "variant",
            "personalization_applied",
            "outcome_type",
            "occurred_at",
            *SCORE_FIELDS,
            "reward",
            "session_duration_minutes",
            "content_type",
            "difficulty_level",
            "created_at",
        ]
        read_only_fields = fields


class OutcomeBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField())


class EffectivenessSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.key")

    class Meta:
        model = Effectiveness
        fields = [
            "id",
            "scope",
            "context",
            "strategy",
            "user",
            "config",
            "window_start",
            "window_end",
            "n_personalized",
            "n_baseline",
            "sample_size",
            "n_outcomes_personalized",
            "n_outcomes_baseline",
            "retention_improvement",
            "performance_improvement",
            "completion_rate_change",
            "engagement_change",
            "mean_personalized",
            "mean_baseline",
            "difference",
            "standard_error",
            "correlation",
            "p_value",
            "ci_lower",
            "ci_upper",
            "composite_score",
            "is_statistically_significant",
            "calculated_at",
        ]
        read_only_fields = fields


class ExperimentPlanInputSerializer(StrictSerializer):
    """DESIGN.md §5.3 planning. baseline_mean and sd are measured from the context's last 28
    days of per-learner rewards when omitted."""

    context = serializers.ChoiceField(choices=Context.choices)  # type: ignore[assignment]
    mde = FiniteFloatField(help_text="The minimum detectable effect, relative (0.05 = 5 %).")
    baseline_mean = FiniteFloatField(required=False, allow_null=True)
    sd = FiniteFloatField(required=False, allow_null=True)
    alpha = FiniteFloatField(required=False, default=0.05, min_value=0.0001, max_value=0.5)
    power = FiniteFloatField(required=False, default=0.8, min_value=0.5, max_value=0.9999)
    variants = serializers.IntegerField(required=False, default=2, min_value=2, max_value=20)
    analysis = serializers.ChoiceField(
        choices=Experiment.Analysis.choices, required=False, default=Experiment.Analysis.SEQUENTIAL
    )
    sequential_tuning = FiniteFloatField(
        required=False, default=5000.0, min_value=1.0, max_value=1e9
    )


class OfflineEvaluationQuerySerializer(serializers.Serializer):
    context = serializers.ChoiceField(choices=Context.choices)  # type: ignore[assignment]
    window_start = serializers.DateField(
        required=False,
        help_text="First day (UTC) of the window; it lasts EFFECTIVENESS_WINDOW_DAYS. Default: "
        "the last complete effectiveness window.",
    )


class OffPolicyEstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    ci_lower = serializers.FloatField(allow_null=True)
    ci_upper = serializers.FloatField(allow_null=True)
    standard_error = serializers.FloatField(allow_null=True)


class OffPolicyValueSerializer(serializers.Serializer):
    policy = serializers.CharField(help_text="always:<strategy key> or level:<LOW|MEDIUM|HIGH>")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["STRATEGY", "LEVEL"])
    ips = OffPolicyEstimateSerializer()
    snips = OffPolicyEstimateSerializer()
    dr = OffPolicyEstimateSerializer()
    effective_sample_size = serializers.FloatField()
    decisions_used = serializers.IntegerField()
    reliable = serializers.BooleanField(help_text="effective sample size ≥ 100")
    warning = serializers.CharField(allow_null=True)


class LoggedValueSerializer(OffPolicyEstimateSerializer):
    decisions = serializers.IntegerField()


class OfflineEvaluationSerializer(serializers.Serializer):
    """DESIGN.md §5.6: mean reward per decision each policy would have had."""

    context = serializers.CharField()  # type: ignore[assignment]
    window_start = serializers.DateField()
    window_end = serializers.DateField()
    decisions = serializers.IntegerField()
    learners = serializers.IntegerField()
    missing_outcome = serializers.CharField(help_text="how a decision without outcome counts")
    interval = serializers.CharField()
    logged = LoggedValueSerializer(help_text="the policy that ran: its mean reward")
    policies = OffPolicyValueSerializer(many=True)
