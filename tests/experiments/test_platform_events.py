"""Webhook events of the platform: shipped, winner found, sample ratio mismatch, holdout
changed and user erased, each sent once when it happens (no personal data)."""

from experiments.models import Experiment, WebhookDelivery, WebhookEvent
from experiments.services import webhooks as service
from experiments.services.experiments import experiment_results_store
from experiments.services.holdouts import holdout_create, holdout_update
from experiments.services.rollouts import experiment_ship
from personalization.services.users import user_erase
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory


def _subscribe(*events):
    return service.webhook_endpoint_create(
        actor=None,
        data={"name": "Receiver", "url": "http://127.0.0.1:9/hook", "events": list(events)},
    )


def _payloads(event):
    return [d.payload for d in WebhookDelivery.objects.filter(event=event).order_by("pk")]


def test_shipped_and_holdout_changed_are_sent(strategy_catalog):
    _subscribe(WebhookEvent.EXPERIMENT_SHIPPED, WebhookEvent.HOLDOUT_CHANGED)
    experiment = make_experiment()
    experiment.status = Experiment.Status.COMPLETED
    experiment.winning_variant = experiment.variants.get(key="treatment")
    experiment.save()
    experiment_ship(actor=None, experiment=experiment)
    (shipped,) = _payloads(WebhookEvent.EXPERIMENT_SHIPPED)
    assert shipped["rollout"]["strategy"] == "balanced"
    holdout = holdout_create(actor=None, data={"name": "H", "percent": 5})
    holdout_update(actor=None, holdout=holdout, data={"is_active": False})
    changed = _payloads(WebhookEvent.HOLDOUT_CHANGED)
    assert [p["holdout"]["is_active"] for p in changed] == [True, False]


def test_winner_and_srm_sent_once_when_they_appear(strategy_catalog):
    _subscribe(WebhookEvent.EXPERIMENT_WINNER_FOUND, WebhookEvent.EXPERIMENT_SRM_DETECTED)
    experiment = make_experiment()
    treatment = experiment.variants.get(key="treatment")

    def store(winning, srm_p):
        experiment_results_store(
            experiment=experiment,
            results={},
            winning=winning,
            srm_p_value=srm_p,
            srm_mismatch=srm_p is not None and srm_p < 0.001,
            evaluated_at=experiment.created_at,
        )

    store(None, 0.5)
    store(treatment, 0.5)
    store(treatment, 0.0001)
    store(treatment, 0.00005)  # still mismatched, still the same winner: nothing new
    assert len(_payloads(WebhookEvent.EXPERIMENT_WINNER_FOUND)) == 1
    (srm,) = _payloads(WebhookEvent.EXPERIMENT_SRM_DETECTED)
    assert srm["srm_p_value"] == 0.0001


def test_user_erased_sends_only_the_id(db):
    _subscribe(WebhookEvent.USER_ERASED)
    user = UserFactory(email="erin@example.org", external_id="erin")
    user_id = user.pk
    user_erase(actor=None, user=user)
    (payload,) = _payloads(WebhookEvent.USER_ERASED)
    assert payload == {"user": {"id": user_id}}
