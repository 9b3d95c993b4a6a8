import pytest
from django.urls import reverse

from personalization.models import Preferences
from tests.personalization.factories import InteractionFactory, UserFactory


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_user_changelist__search_by_external_id_and_filter_by_level(admin_client):
    high = UserFactory(external_id="crm-high")
    Preferences.objects.create(user=high, personalization_level="HIGH")
    UserFactory(external_id="crm-low")
    url = reverse("admin:personalization_user_changelist")

    found = admin_client.get(url, {"q": "crm-high"}).context["cl"].result_list
    assert list(found) == [high]
    filtered = admin_client.get(url, {"preferences__personalization_level": "HIGH"})
    assert list(filtered.context["cl"].result_list) == [high]


def test_user_change_page__shows_preferences_and_skill_profile(admin_client, user):
    Preferences.objects.create(user=user)
    response = admin_client.get(reverse("admin:personalization_user_change", args=[user.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Personalization level" in content
    assert "Skill profile" in content


def test_interactions__read_only_with_filters(admin_client, user):
    interaction = InteractionFactory(user=user, service="tutor")
    changelist = reverse("admin:personalization_interaction_changelist")
    assert admin_client.get(changelist, {"service": "tutor"}).status_code == 200
    assert admin_client.get(reverse("admin:personalization_interaction_add")).status_code == 403
    change = reverse("admin:personalization_interaction_change", args=[interaction.pk])
    admin_client.post(change, {"service": "changed"})
    interaction.refresh_from_db()
    assert interaction.service == "tutor"
