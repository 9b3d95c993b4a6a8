from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "personalization"
    verbose_name = "Users and personalization"

    def ready(self) -> None:
        from personalization import seeding

        seeding.register_builtin_steps()
