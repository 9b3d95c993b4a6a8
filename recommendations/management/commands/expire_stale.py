from django.core.management.base import BaseCommand

from recommendations.services.feedback import recommendations_expire_stale


class Command(BaseCommand):
    help = (
        "Expire PENDING recommendations older than 7 days (twin of recommendations.expire_stale)."
    )

    def handle(self, *args: object, **options: object) -> None:
        count = recommendations_expire_stale()
        self.stdout.write(self.style.SUCCESS(f"{count} recommendation(s) expired."))
