"""The content catalog."""

import json
from pathlib import Path
from typing import Any

from django.db import transaction

from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot
from recommendations.models import ContentItem

EDITABLE_FIELDS = (
    "key",
    "title",
    "skill",
    "content_type",
    "difficulty",
    "duration_minutes",
    "is_active",
)


@transaction.atomic
def content_item_create(*, actor: Any, data: dict[str, Any]) -> ContentItem:
    item = ContentItem(**{k: v for k, v in data.items() if k in EDITABLE_FIELDS})
    item.full_clean()
    item.save()
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.CONTENT_CHANGED,
        target=item,
        changes=changes_between({}, model_snapshot(item)),
    )
    return item


@transaction.atomic
def content_item_update(*, actor: Any, item: ContentItem, data: dict[str, Any]) -> ContentItem:
    item = ContentItem.objects.select_for_update().get(pk=item.pk)
    before = model_snapshot(item)
    for name, value in data.items():
        if name in EDITABLE_FIELDS:
            setattr(item, name, value)
    item.full_clean()
    item.save()
    changes = changes_between(before, model_snapshot(item))
    if changes:
        audit_event_record(
            actor=actor, action=AuditEvent.Action.CONTENT_CHANGED, target=item, changes=changes
        )
    return item


@transaction.atomic
def content_catalog_load(*, path: Path) -> tuple[int, int]:
    """Create the fixture's items that are missing (matched by key); existing items keep
    whatever staff changed. Returns (created, present)."""
    created = present = 0
    existing = set(ContentItem.objects.values_list("key", flat=True))
    new = []
    for entry in json.loads(path.read_text()):
        fields = {k: v for k, v in entry["fields"].items() if k in EDITABLE_FIELDS}
        if fields["key"] in existing:
            present += 1
            continue
        item = ContentItem(**fields)
        item.full_clean()
        new.append(item)
        created += 1
    ContentItem.objects.bulk_create(new)
    return created, present
