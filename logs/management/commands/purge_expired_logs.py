from django.conf import settings
from django.core.management.base import BaseCommand

from logs.services import request_logs_purge_expired
from outcomes.services.retention import decisions_purge_expired


class Command(BaseCommand):
    help = (
        "Delete personalization and translation request logs older than LOG_RETENTION_DAYS "
        "and decisions older than DECISION_RETENTION_DAYS, in batches. The operator's twin of "
        "the task logs.purge_expired_logs."
    )

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(f"Purging request logs older than {settings.LOG_RETENTION_DAYS} days …")
        deleted = request_logs_purge_expired()
        for table, count in deleted.items():
            self.stdout.write(f"  {table}: {count:,} deleted")
        self.stdout.write(f"Purging decisions older than {settings.DECISION_RETENTION_DAYS} days …")
        decisions = decisions_purge_expired()
        self.stdout.write(
            f"  decisions: {decisions['decisions']:,} deleted in {decisions['batches']:,} batch(es)"
        )
        total = sum(deleted.values()) + decisions["decisions"]
        self.stdout.write(self.style.SUCCESS(f"Done: {total:,} rows deleted."))
