from django.apps import AppConfig


class LogsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "logs"
    verbose_name = "Audit and request logs"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from logs.aggregates import register_sqlite_aggregates

        connection_created.connect(
            register_sqlite_aggregates, dispatch_uid="logs.sqlite_aggregates"
        )
