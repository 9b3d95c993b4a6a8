from django.core.management.base import BaseCommand, CommandParser

from outcomes.services.evaluation import bandit_weights_update


class Command(BaseCommand):
    help = "Reweight every ACTIVE bandit experiment (twin of experiments.update_bandit_weights)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, help="seed of the Thompson draws (default: random)")

    def handle(self, *args: object, **options: object) -> None:
        result = bandit_weights_update(seed=options.get("seed"))  # type: ignore[arg-type]
        self.stdout.write(
            self.style.SUCCESS(f"Reweighted {result['experiments']} bandit experiment(s).")
        )
