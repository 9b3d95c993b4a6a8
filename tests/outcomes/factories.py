import datetime
from typing import Any

from django.utils import timezone

from outcomes.services.ingest import outcome_record_many


def outcome_item(event_id: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event_id": event_id,
        "outcome_type": "MISSION_COMPLETED",
        "occurred_at": timezone.now() - datetime.timedelta(minutes=1),
        "retention_score": 0.5,
    }
    item.update(fields)
    return item


def record(user: Any, *items: dict[str, Any]) -> Any:
    return outcome_record_many(user=user, items=list(items))
