from personalization.models import User


def user_get_by_reference(*, reference: str) -> User | None:
    """An active user named by primary key or by the client application's `external_id`.
    A numeric reference is tried as the id first, then as an external id."""
    users = User.objects.filter(is_active=True)
    if reference.isdigit():
        by_id = users.filter(pk=int(reference)).first()
        if by_id is not None:
            return by_id
    return users.filter(external_id=reference).first()
