import time

from django.core.management.base import BaseCommand, CommandParser

from outcomes.simulations import all_rates


class Command(BaseCommand):
    help = (
        "Judge the decision rules by what they conclude: A/A experiments (fixed horizon and "
        "Bayesian), hourly peeking for 28 days (sequential against fixed horizon) and equal-arm "
        "bandits under a reward trend. Prints each rate with its standard error; fixed seeds, "
        "so a run is reproducible."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help="multiply the number of simulated experiments (1: 1,000 of each, about a minute)",
        )

    def handle(self, *args: object, **options: object) -> None:
        started = time.monotonic()
        scale = float(options["scale"])  # type: ignore[arg-type]
        rates = all_rates(scale, progress=lambda step: self.stderr.write(f"… {step}"))
        for rate in rates:
            self.stdout.write(str(rate))
        self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.0f} s"))
