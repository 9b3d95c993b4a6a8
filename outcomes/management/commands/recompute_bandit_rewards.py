from django.core.management.base import BaseCommand, CommandParser

from outcomes.services.rewards import bandit_rewards_recompute


class Command(BaseCommand):
    help = (
        "Add the decisions and outcomes committed since the last run to every strategy "
        "config's bandit statistics, or rebuild them from every row with --all "
        "(twin of outcomes.recompute_bandit_rewards)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="rebuild from every row")

    def handle(self, *args: object, **options: object) -> None:
        rebuild = bool(options["all"])
        what = "every decision and outcome" if rebuild else "new decisions and outcomes"
        self.stdout.write(f"Recomputing bandit rewards from {what} …")
        result = bandit_rewards_recompute(rebuild=rebuild)
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {result['updated']:,} configs changed ({result['configs']:,} read), "
                f"{result['rescored']:,} confidence scores refreshed."
            )
        )
