"""`manage.py seed` as a registry of steps. Each app contributes its own steps from its
`AppConfig.ready()`, so the command lives in the lowest app without importing higher ones.
Every step is idempotent and returns one line for the report."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from rest_framework.authtoken.models import Token

from personalization.models import User


@dataclass
class SeedContext:
    """What steps share: options from the command line and what earlier steps created."""

    options: dict[str, object] = field(default_factory=dict)
    created: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SeedStep:
    order: int
    name: str
    run: Callable[[SeedContext], str]


_steps: dict[str, SeedStep] = {}


def register_seed_step(*, order: int, name: str, run: Callable[[SeedContext], str]) -> None:
    _steps[name] = SeedStep(order=order, name=name, run=run)


def seed_steps() -> list[SeedStep]:
    return sorted(_steps.values(), key=lambda step: (step.order, step.name))


def _required_password(setting: str) -> str:
    password = getattr(settings, setting, "")
    if not password:
        raise ImproperlyConfigured(
            f"Set {setting} in the environment to seed this database; "
            "production settings have no default password."
        )
    return password


def _upsert_login(*, username: str, email: str, password: str, **attributes: object) -> User:
    user, _created = User.objects.get_or_create(username=username, defaults={"email": email})
    user.email = email
    for name, value in attributes.items():
        setattr(user, name, value)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def seed_logins(context: SeedContext) -> str:
    """The staff login, the demo user, and a service account for client applications."""
    admin = _upsert_login(
        username=settings.SEED_ADMIN_USERNAME,
        email=settings.SEED_ADMIN_EMAIL,
        password=_required_password("SEED_ADMIN_PASSWORD"),
        is_staff=True,
        is_superuser=True,
        display_name="Attune staff",
    )
    demo = _upsert_login(
        username=settings.SEED_DEMO_USERNAME,
        email=settings.SEED_DEMO_EMAIL,
        password=_required_password("SEED_DEMO_PASSWORD"),
        display_name="Demo Learner",
        external_id="demo-learner-1",
    )
    client, _created = User.objects.get_or_create(
        username=settings.SEED_CLIENT_USERNAME,
        defaults={"display_name": "Client application (service account)"},
    )
    client.set_unusable_password()
    client.save()
    client.user_permissions.add(
        Permission.objects.get(codename="act_for_users", content_type__app_label="personalization")
    )
    token, _created = Token.objects.get_or_create(user=client)
    context.created.update(admin=admin, demo=demo, client=client, client_token=token.key)
    return (
        f"logins: staff {admin.username!r}, demo user {demo.username!r}, "
        f"service account {client.username!r}"
    )


def register_builtin_steps() -> None:
    register_seed_step(order=10, name="logins", run=seed_logins)
