import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from personalization.seeding import SeedContext, seed_steps


class Command(BaseCommand):
    help = (
        "Create or refresh the demo data: logins, the demo user's profile, the catalogs, "
        "experiments and synthetic users with known true strategy effects. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=160, help="synthetic users (default 160)")
        parser.add_argument("--days", type=int, default=42, help="days of history (default 42)")
        parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")

    def handle(self, *args: object, **options: object) -> None:
        context = SeedContext(options=dict(options), progress_callback=self._progress)
        steps = seed_steps()
        for number, step in enumerate(steps, start=1):
            started = time.monotonic()
            self.stdout.write(f"[{number}/{len(steps)}] {step.name} …", ending="")
            self.stdout.flush()
            line = step.run(context)
            if context.progressed:
                self.stdout.write("")
                context.progressed = False
            self.stdout.write(f" {line} ({time.monotonic() - started:.1f}s)")
        self.stdout.write(self.style.SUCCESS("Seed complete."))
        if settings.DEBUG:
            self._print_logins(context)

    def _progress(self, message: str) -> None:
        if self.stdout.isatty():
            self.stdout.write(f"\r    {message}\033[K", ending="")
        else:
            self.stdout.write(f"\n    {message}", ending="")
        self.stdout.flush()

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
