from typing import Any

from django.db import transaction

from config.errors import PayloadTooLargeError
from personalization.models import Interaction, User

MAX_BATCH = 500


@transaction.atomic
def interaction_record_many(*, user: User, items: list[dict[str, Any]]) -> list[Interaction]:
    """Store one or more interactions in one INSERT; all or none."""
    if len(items) > MAX_BATCH:
        raise PayloadTooLargeError(
            f"{len(items)} interactions in one request; send at most {MAX_BATCH} per request."
        )
    interactions = [Interaction(user=user, **item) for item in items]
    for interaction in interactions:
        interaction.full_clean(exclude=["user"])
    return Interaction.objects.bulk_create(interactions)
