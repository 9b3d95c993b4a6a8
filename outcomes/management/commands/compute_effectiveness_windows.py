from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from outcomes.models import Outcome
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.windows import WindowIndex


class Command(BaseCommand):
    help = (
        "Compute effectiveness for outcomes stored since the last run (GLOBAL rows of their "
        "windows, USER rows of their users), or every window for every user with --all "
        "(twin of outcomes.compute_effectiveness_windows)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="recompute every window")

    def handle(self, *args: object, **options: object) -> None:
        windows = None
        if options["all"]:
            windows = set(
                Outcome.objects.annotate(
                    window=WindowIndex("occurred_at", days=settings.EFFECTIVENESS_WINDOW_DAYS)
                )
                .values_list("window", flat=True)
                .distinct()
                .order_by()
            )
            self.stdout.write(f"Recomputing all {len(windows)} windows …")
        result = effectiveness_windows_compute(windows=windows)
        self.stdout.write(
            self.style.SUCCESS(
                f"{result['windows']} window(s): {result['global']} GLOBAL and {result['user']} "
                f"USER rows, {result['configs']} config(s) rescored, {result['withdrawn']} USER "
                "row(s) of users who withdrew consent deleted."
            )
        )
