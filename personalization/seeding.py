"""`manage.py seed` as a registry of steps. Each app contributes its own steps from its
`AppConfig.ready()`, so the command lives in the lowest app without importing higher ones.
Every step is idempotent and returns one line for the report."""

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from personalization.models import User
from personalization.roles import act_for_users_permission


@dataclass
class SeedContext:
    """What steps share: options from the command line and what earlier steps created."""

    options: dict[str, object] = field(default_factory=dict)
    created: dict[str, object] = field(default_factory=dict)
    progress_callback: Callable[[str], None] | None = None
    progressed: bool = False

    def progress(self, message: str) -> None:
        """Report progress of a long step on one line."""
        if self.progress_callback is not None:
            self.progress_callback(message)
            self.progressed = True

    def option(self, name: str, default: int) -> int:
        value = self.options.get(name)
        return int(value) if isinstance(value, int) else default


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
    client.user_permissions.add(act_for_users_permission().get())
    token, _created = Token.objects.get_or_create(user=client)
    context.created.update(admin=admin, demo=demo, client=client, client_token=token.key)
    return (
        f"logins: staff {admin.username!r}, demo user {demo.username!r}, "
        f"service account {client.username!r}"
    )


DEMO_SKILLS = {
    # skill: scores over the past weeks, oldest first
    "python_basics": [0.55, 0.62, 0.70, 0.78],
    "control_flow": [0.40, 0.48, 0.55, 0.61],
    "data_structures": [0.30, 0.35, 0.42],
    "debugging": [0.25, 0.30, 0.28, 0.36],
    "robotics_sensors": [0.15, 0.22, 0.31],
    "electronics": [0.50, 0.47, 0.58],
}
DEMO_SERVICES = {
    "library": ["space", "history", "robots"],
    "tutor_chat": ["python", "robots"],
    "practice_lab": ["python", "electronics"],
    "community": ["robots", "space"],
}
DEMO_INTERACTIONS = 30


@transaction.atomic
def seed_demo_profile(context: SeedContext) -> str:
    """The demo user's backgrounds, preferences, skill history and interactions, created
    through the services once; a later run finds them and changes nothing."""
    from personalization.models import Interaction, Preferences, SkillAssessment
    from personalization.services.interactions import interaction_record_many
    from personalization.services.preferences import preferences_update
    from personalization.services.skills import skill_assessment_record, skill_profile_recompute
    from personalization.services.users import user_profile_update

    demo = User.objects.get(username=settings.SEED_DEMO_USERNAME)
    now = timezone.now()
    if not demo.profile_completed:
        user_profile_update(
            actor=None,
            user=demo,
            data={
                "software_background": {
                    "level": "INTERMEDIATE",
                    "languages": ["python", "javascript"],
                    "frameworks": ["django"],
                },
                "hardware_background": {
                    "level": "BASIC",
                    "domains": ["robotics_kits", "sensors_actuators"],
                },
            },
        )
    if not Preferences.objects.filter(user=demo).exists():
        preferences_update(
            actor=None,
            user=demo,
            data={
                "learning_style": "VISUAL",
                "daily_minutes": 45,
                "goals": ["Build a line-following robot", "Write clean Python"],
                "preferred_themes": ["robots", "space"],
                "preferred_services": ["library", "practice_lab"],
            },
        )
    if not SkillAssessment.objects.filter(user=demo).exists():
        for skill, scores in DEMO_SKILLS.items():
            for index, score in enumerate(scores):
                weeks_ago = 2 * (len(scores) - index)
                skill_assessment_record(
                    user=demo,
                    skill=skill,
                    score=score,
                    assessed_at=now - datetime.timedelta(weeks=weeks_ago),
                )
    skill_profile_recompute(user=demo)
    missing = DEMO_INTERACTIONS - Interaction.objects.filter(user=demo).count()
    if missing > 0:
        rng = random.Random(42)  # noqa: S311 - demo data, not security
        services = sorted(DEMO_SERVICES)
        items = []
        for index in range(missing):
            service = services[index % len(services)]
            items.append(
                {
                    "type": rng.choice(["READING", "CHAT", "PRACTICE", "VIEW", "FEEDBACK"]),
                    "service": service,
                    "theme": rng.choice(DEMO_SERVICES[service]),
                    "rating": rng.choice([None, 3, 4, 4, 5, 5]),
                    "occurred_at": now - datetime.timedelta(days=index, hours=rng.randint(0, 12)),
                }
            )
        interaction_record_many(user=demo, items=items)
    return (
        f"demo profile: {len(DEMO_SKILLS)} skills, "
        f"{Interaction.objects.filter(user=demo).count()} interactions"
    )


def register_builtin_steps() -> None:
    register_seed_step(order=10, name="logins", run=seed_logins)
    register_seed_step(order=20, name="demo profile", run=seed_demo_profile)
