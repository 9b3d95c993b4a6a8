import pytest
from django.urls import reverse

from logs.models import AuditEvent
from recommendations.models import ContentItem


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_content_item__editable_and_audited(admin_client, content_catalog):
    item = ContentItem.objects.get(key="testing-quiz-3")
    url = reverse("admin:recommendations_contentitem_change", args=[item.pk])
    form = {
        "key": item.key,
        "title": "Testing quiz, revised",
        "skill": item.skill,
        "content_type": item.content_type,
        "difficulty": item.difficulty,
        "duration_minutes": item.duration_minutes,
        "is_active": "on",
    }
    assert admin_client.post(url, form).status_code == 302
    event = AuditEvent.objects.get(
        action="ADMIN_CHANGED", target_type="recommendations.contentitem"
    )
    assert event.changes == {
        "title": {"old": "Check yourself: testing", "new": "Testing quiz, revised"}
    }


def test_recommendations_and_paths__read_only_with_filters(admin_client, content_catalog):
    for name, params in [
        ("recommendation", {"status": "PENDING", "context": "CONTENT"}),
        ("learningpath", {"status": "ACTIVE"}),
    ]:
        changelist = reverse(f"admin:recommendations_{name}_changelist")
        assert admin_client.get(changelist, params).status_code == 200
        assert admin_client.get(reverse(f"admin:recommendations_{name}_add")).status_code == 403
