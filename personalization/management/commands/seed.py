import time

from django.conf import settings
from django.core.management.base import BaseCommand

from personalization.seeding import SeedContext, seed_steps


class Command(BaseCommand):
    help = "Create or refresh the demo data. Idempotent: running it twice changes nothing more."

    def handle(self, *args: object, **options: object) -> None:
        context = SeedContext(options=dict(options))
        steps = seed_steps()
        for number, step in enumerate(steps, start=1):
            started = time.monotonic()
            self.stdout.write(f"[{number}/{len(steps)}] {step.name} …", ending="")
            self.stdout.flush()
            line = step.run(context)
            self.stdout.write(f" {line} ({time.monotonic() - started:.1f}s)")
        self.stdout.write(self.style.SUCCESS("Seed complete."))
        if settings.DEBUG:
            self._print_logins(context)

    def _print_logins(self, context: SeedContext) -> None:
        self.stdout.write("Logins (local defaults; set SEED_* in .env to change them):")
        self.stdout.write(
            f"  staff:   {settings.SEED_ADMIN_USERNAME} / {settings.SEED_ADMIN_PASSWORD}"
        )
        self.stdout.write(
            f"  demo:    {settings.SEED_DEMO_USERNAME} / {settings.SEED_DEMO_PASSWORD}"
        )
        token = context.created.get("client_token")
        if token:
            self.stdout.write(
                f"  service: {settings.SEED_CLIENT_USERNAME}, header 'Authorization: Token {token}'"
            )
