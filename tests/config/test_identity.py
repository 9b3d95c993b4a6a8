"""Who may act for whom (DESIGN.md §3 learners and service accounts, §7 X-On-Behalf-Of,
§10 identity)."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache

from experiments.models import Assignment, Decision, Strategy
from logs.models import AuditEvent
from outcomes.models import Outcome
from personalization.models import User
from personalization.services.preferences import preferences_update
from tests.conftest import assert_error_shape, token_client
from tests.experiments.factories import make_experiment
from tests.personalization.factories import ServiceAccountFactory, StaffFactory, UserFactory

ME = "/api/v1/me/"
DECISIONS = "/api/v1/decisions/"
OUTCOMES = "/api/v1/outcomes/"
OUTCOME = {
    "event_id": "evt-1",
    "outcome_type": "MISSION_COMPLETED",
    "context": "MISSION",
    "completion_rate": 0.5,
}


def act_for_users_permission() -> Permission:
    return Permission.objects.get(
        codename="act_for_users", content_type__app_label="personalization"
    )


# --- 1. Service accounts act only for learners ---------------------------------------------


@pytest.mark.parametrize("method", ["delete", "patch", "get"])
def test_on_behalf_of__superuser_target__403_and_untouched(service_client, method):
    superuser = StaffFactory(external_id="root")
    LogEntry.objects.create(user=superuser, action_flag=1, object_repr="x", change_message="")
    payload = {"display_name": "Taken over"} if method == "patch" else None
    for reference in ("root", f"id:{superuser.pk}"):
        response = getattr(service_client, method)(
            ME, payload, format="json", HTTP_X_ON_BEHALF_OF=reference
        )
        assert_error_shape(response, 403, code="target_not_learner")
    superuser.refresh_from_db()
    assert superuser.display_name != "Taken over"
    assert LogEntry.objects.filter(user=superuser).exists()


def test_on_behalf_of__staff_without_superuser_target__403(service_client):
    staff = UserFactory(is_staff=True, external_id="ops")
    response = service_client.patch(
        ME, {"display_name": "x"}, format="json", HTTP_X_ON_BEHALF_OF="ops"
    )
    assert_error_shape(response, 403, code="target_not_learner")
    staff.refresh_from_db()
    assert staff.display_name != "x"


def test_on_behalf_of__other_service_account_target__403(service_client):
    other = ServiceAccountFactory(external_id="other-app")
    response = service_client.delete(ME, HTTP_X_ON_BEHALF_OF="other-app")
    assert_error_shape(response, 403, code="target_not_learner")
    assert User.objects.filter(pk=other.pk).exists()


def test_on_behalf_of__service_account_through_a_group_is_not_a_target(service_client):
    group = Group.objects.create(name="apps")
    group.permissions.add(act_for_users_permission())
    member = UserFactory(external_id="grouped-app")
    member.groups.add(group)
    response = service_client.delete(ME, HTTP_X_ON_BEHALF_OF="grouped-app")
    assert_error_shape(response, 403, code="target_not_learner")
    assert User.objects.filter(pk=member.pk).exists()


def test_users__service_account__lists_and_reads_learners_only(service_client, user, staff_user):
    other_service = ServiceAccountFactory()
    group = Group.objects.create(name="apps")
    group.permissions.add(act_for_users_permission())
    grouped = UserFactory()
    grouped.groups.add(group)
    listed = {
        row["id"] for row in service_client.get("/api/v1/users/?page_size=200").json()["results"]
    }
    assert user.pk in listed
    assert not listed & {staff_user.pk, other_service.pk, grouped.pk}
    assert_error_shape(service_client.get(f"/api/v1/users/{staff_user.pk}/"), 404)
    assert service_client.get(f"/api/v1/users/{user.pk}/").status_code == 200


def test_users__staff__lists_everyone(staff_client, user, service_account):
    listed = {
        row["id"] for row in staff_client.get("/api/v1/users/?page_size=200").json()["results"]
    }
    assert {user.pk, service_account.pk} <= listed


# --- 2. A bare reference is an external id, never an Attune id -----------------------------


def test_on_behalf_of__numeric_external_id__names_that_learner_not_attune_id(
    service_client, strategy_catalog
):
    first = UserFactory()
    second = UserFactory(external_id=str(first.pk))
    response = service_client.get(ME, HTTP_X_ON_BEHALF_OF=str(first.pk))
    assert response.status_code == 200
    assert response.json()["id"] == second.pk
    response = service_client.get(ME, HTTP_X_ON_BEHALF_OF=f"id:{first.pk}")
    assert response.json()["id"] == first.pk


def test_on_behalf_of__numeric_reference_without_such_external_id__404(service_client, user):
    response = service_client.get(ME, HTTP_X_ON_BEHALF_OF=str(user.pk))
    body = assert_error_shape(response, 404, code="not_found")
    assert "id:" in body["errors"][0]["detail"]


@pytest.mark.parametrize("reference", ["id:", "id:abc", "id:-1", "id:" + "9" * 30, "id:1.0"])
def test_on_behalf_of__malformed_id_reference__404(service_client, reference):
    assert_error_shape(service_client.get(ME, HTTP_X_ON_BEHALF_OF=reference), 404)


# --- 3. Decisions, outcomes and recommendations are for learners ---------------------------


def test_decisions__service_account_for_itself__403_and_not_enrolled(
    service_client, service_account, strategy_catalog
):
    make_experiment(context="MISSION")
    response = service_client.post(DECISIONS, {"context": "MISSION"}, format="json")
    assert_error_shape(response, 403, code="learner_required")
    assert not Assignment.objects.filter(user=service_account).exists()
    assert not Decision.objects.exists()


def test_decisions__staff_for_itself__403(staff_client, staff_user, strategy_catalog):
    make_experiment(context="MISSION")
    response = staff_client.post(DECISIONS, {"context": "MISSION"}, format="json")
    assert_error_shape(response, 403, code="learner_required")
    assert not Assignment.objects.filter(user=staff_user).exists()


def test_decisions__service_account_for_a_learner__201(service_client, user, strategy_catalog):
    response = service_client.post(
        DECISIONS, {"context": "MISSION"}, format="json", HTTP_X_ON_BEHALF_OF=user.external_id
    )
    assert response.status_code == 201
    assert Decision.objects.get().user == user


@pytest.mark.parametrize("caller", ["service", "staff"])
def test_outcomes__non_learner__403_nothing_stored(
    service_client, staff_client, strategy_catalog, caller
):
    client = service_client if caller == "service" else staff_client
    assert_error_shape(client.post(OUTCOMES, OUTCOME, format="json"), 403, code="learner_required")
    assert_error_shape(
        client.post(OUTCOMES, [OUTCOME], format="json"), 403, code="learner_required"
    )
    assert not Outcome.objects.exists()


@pytest.mark.parametrize("caller", ["service", "staff"])
def test_recommendations_generate__non_learner__403(
    service_client, staff_client, strategy_catalog, content_catalog, caller
):
    client = service_client if caller == "service" else staff_client
    response = client.post(
        "/api/v1/recommendations/generate/", {"context": "CONTENT", "limit": 3}, format="json"
    )
    assert_error_shape(response, 403, code="learner_required")
    assert not Decision.objects.exists()


def test_reads__non_learner__still_allowed(service_client, staff_client):
    assert service_client.get(DECISIONS).status_code == 200
    assert staff_client.get(OUTCOMES).status_code == 200


# --- 4. A revoked permission takes effect at once -------------------------------------------


def test_act_for_users__revoked_directly__next_request_403(service_client, service_account, user):
    assert service_client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200
    service_account.user_permissions.remove(act_for_users_permission())
    response = service_client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id)
    assert_error_shape(response, 403, code="permission_denied")


def test_act_for_users__revoked_from_group__next_request_403(user):
    group = Group.objects.create(name="apps")
    group.permissions.add(act_for_users_permission())
    account = UserFactory()
    account.groups.add(group)
    client = token_client(account)
    assert client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200
    group.permissions.remove(act_for_users_permission())
    assert_error_shape(client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)
    group.permissions.add(act_for_users_permission())
    assert client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200
    account.groups.clear()
    assert_error_shape(client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)


def test_act_for_users__other_permissions_and_groups__still_a_learner(user, strategy_catalog):
    """Only act_for_users makes a service account: other permissions, held directly or
    through a group that other service accounts' group sits beside, leave a learner one."""
    apps = Group.objects.create(name="apps")
    apps.permissions.add(act_for_users_permission())
    editors = Group.objects.create(name="editors")
    editors.permissions.add(Permission.objects.get(codename="view_strategy"))
    learner = UserFactory()
    learner.groups.add(editors)
    learner.user_permissions.add(Permission.objects.get(codename="change_strategy"))
    client = token_client(learner)
    assert client.post(DECISIONS, {"context": "MISSION"}, format="json").status_code == 201
    assert_error_shape(client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)
    learner.groups.add(apps)
    assert_error_shape(
        client.post(DECISIONS, {"context": "MISSION"}, format="json"),
        403,
        code="learner_required",
    )
    assert client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200


def test_act_for_users__same_codename_on_another_model__every_check_says_learner(
    user, strategy_catalog
):
    """The role is the user model's permission in every check: token lookups, the cached
    answer of session requests and the learner lists agree on a look-alike."""
    from django.contrib.contenttypes.models import ContentType

    from personalization.models import Preferences
    from personalization.roles import acts_for_users, acts_for_users_forget
    from personalization.selectors import learners

    look_alike = Permission.objects.create(
        codename="act_for_users",
        name="Look-alike",
        content_type=ContentType.objects.get_for_model(Preferences),
    )
    holder = UserFactory()
    holder.user_permissions.add(look_alike)
    client = token_client(holder)
    assert client.post(DECISIONS, {"context": "MISSION"}, format="json").status_code == 201
    assert_error_shape(client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)
    acts_for_users_forget([holder.pk])
    assert not acts_for_users(User.objects.get(pk=holder.pk))
    assert learners(User.objects.filter(pk=holder.pk)).exists()


def test_act_for_users__group_deleted__next_request_403(user):
    group = Group.objects.create(name="apps")
    group.permissions.add(act_for_users_permission())
    account = UserFactory()
    account.groups.add(group)
    client = token_client(account)
    assert client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200
    group.delete()
    assert_error_shape(client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)


def test_act_for_users__granted__learner_stops_being_a_target(service_client, user):
    assert service_client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200
    user.user_permissions.add(act_for_users_permission())
    assert_error_shape(service_client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)


def test_act_for_users__made_staff__learner_stops_being_a_target(service_client, user):
    assert service_client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id).status_code == 200
    user.is_staff = True
    user.save()
    assert_error_shape(service_client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id), 403)


@pytest.mark.parametrize("through", ["direct", "group", "superuser", "none"])
def test_token__role_read_with_the_token__stale_cached_answer_ignored(
    user, strategy_catalog, through
):
    """The token lookup says whether its user holds act_for_users (directly, through a group,
    or as a superuser), so a token request never trusts the cached answer, however wrong."""
    account = UserFactory()
    if through == "direct":
        account.user_permissions.add(act_for_users_permission())
    elif through == "group":
        group = Group.objects.create(name="apps")
        group.permissions.add(act_for_users_permission())
        account.groups.add(group)
    elif through == "superuser":
        User.objects.filter(pk=account.pk).update(is_superuser=True)
    client = token_client(account)
    service = through != "none"
    cache.set(f"acts-for-users:{account.pk}", not service, 60)  # a stale answer
    decided = client.post(DECISIONS, {"context": "MISSION"}, format="json")
    acting = client.get(ME, HTTP_X_ON_BEHALF_OF=user.external_id)
    if service:
        assert_error_shape(decided, 403, code="learner_required")
        assert acting.status_code == 200
    else:
        assert decided.status_code == 201
        assert_error_shape(acting, 403, code="permission_denied")


def test_on_behalf_of__target_role_read_with_the_target__stale_cached_answer_ignored(
    service_client,
):
    """The target's role comes from the read that finds it: a service account whose cached
    answer says "learner" is still refused as a target."""
    other = ServiceAccountFactory(external_id="other-app-2")
    cache.set(f"acts-for-users:{other.pk}", False, 60)  # a stale answer
    response = service_client.get(ME, HTTP_X_ON_BEHALF_OF="other-app-2")
    assert_error_shape(response, 403, code="target_not_learner")


# --- 5. The export holds the audit events about the user ----------------------------------


def test_export__audit_events_about_the_user_and_their_rows(service_client, service_account, user):
    service_client.patch(
        ME, {"display_name": "Renamed"}, format="json", HTTP_X_ON_BEHALF_OF=user.external_id
    )
    prefs = preferences_update(
        actor=service_account, user=user, data={"daily_minutes": 45}, replace=False
    )
    unrelated = UserFactory()
    preferences_update(actor=unrelated, user=unrelated, data={"daily_minutes": 20}, replace=False)
    export = token_client(user).get("/api/v1/me/export/").json()
    events = export["data"]["logs.auditevent"]
    about = {(row["action"], row["target_type"], row["target_id"]) for row in events}
    assert ("PROFILE_UPDATED", "personalization.user", str(user.pk)) in about
    assert ("PREFERENCES_UPDATED", "personalization.preferences", str(prefs.pk)) in about
    assert all(row["actor_id"] != unrelated.pk for row in events)
    assert len({row["id"] for row in events}) == len(events)


def test_erase__redacts_events_about_the_user_and_their_rows(service_account, user):
    from personalization.services.users import user_erase

    prefs = preferences_update(
        actor=service_account, user=user, data={"daily_minutes": 45}, replace=False
    )
    user_erase(actor=service_account, user=user)
    event = AuditEvent.objects.get(
        target_type="personalization.preferences", target_id=str(prefs.pk)
    )
    assert event.changes == {}


# --- 13. A strategy that a running experiment serves stays active --------------------------


def test_strategy_deactivate__served_by_active_experiment__409(staff_client, strategy_catalog):
    experiment = make_experiment(context="MISSION")
    treatment = strategy_catalog[("MISSION", "balanced")]
    response = staff_client.patch(
        f"/api/v1/strategies/{treatment.pk}/", {"is_active": False}, format="json"
    )
    body = assert_error_shape(response, 409, code="strategy_in_use")
    assert experiment.name in body["errors"][0]["detail"]
    assert Strategy.objects.get(pk=treatment.pk).is_active


def test_decide__variant_strategy_inactive__no_assignment_stored(strategy_catalog):
    """Deactivated behind the service's back (e.g. in the database): nobody is assigned to a
    variant they cannot be served, and nobody is counted in it."""
    from experiments.catalog import catalog_invalidate
    from experiments.services.decisions import decision_make

    make_experiment(context="MISSION")
    Strategy.objects.filter(context="MISSION", key="balanced").update(is_active=False)
    catalog_invalidate()
    learners = UserFactory.create_batch(20)
    for learner in learners:
        decision_make(user=learner, context="MISSION")
    assignments = Assignment.objects.select_related("variant")
    assert all(a.variant.key == "control" for a in assignments)
    assert assignments.count() < 20  # the treatment half fell through, unassigned
    treatment_decisions = Decision.objects.filter(variant__key="treatment")
    assert not treatment_decisions.exists()
