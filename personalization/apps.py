from django.apps import AppConfig
from django.db.models import Model


class PersonalizationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "personalization"
    verbose_name = "Users and personalization"

    def ready(self) -> None:
        from django.contrib.admin.models import LogEntry
        from rest_framework.authtoken.models import Token

        from logs.models import AuditEvent, PersonalizationLog, TranslationLog
        from personalization import seeding, signals
        from personalization.models import (
            Interaction,
            Preferences,
            SkillAssessment,
            SkillProfile,
            User,
        )
        from personalization.registry import register_user_data, register_user_merge

        seeding.register_builtin_steps()
        signals.connect()

        # Rows about a user held by this app and by the apps below it; higher apps register
        # their own from their ready().
        register_user_data(User, owner_field="pk", secret_fields=frozenset({"password"}))
        for model in (Preferences, SkillAssessment, SkillProfile, Interaction):
            register_user_data(model)
        register_user_data(PersonalizationLog)
        register_user_data(TranslationLog)
        register_user_data(AuditEvent, owner_field="actor")
        register_user_data(Token, secret_fields=frozenset({"key"}))
        register_user_data(LogEntry)
        moved: tuple[type[Model], ...] = (
            Interaction,
            SkillAssessment,
            PersonalizationLog,
            TranslationLog,
        )
        for kind in moved:
            register_user_merge(kind)
        for kind in (Preferences, SkillProfile):  # the survivor's own wins
            register_user_merge(kind, one_per_user=True)
        # Erased with the merged learner: their token, admin log entries, and the audit events
        # they acted in (kept, redacted, as on erasure).
        for kind in (Token, LogEntry, AuditEvent):
            register_user_merge(kind, stays=True)
