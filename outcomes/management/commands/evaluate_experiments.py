from django.core.management.base import BaseCommand

from outcomes.services.evaluation import experiments_evaluate_due


class Command(BaseCommand):
    help = (
        "Start due SCHEDULED experiments, evaluate ACTIVE ones, complete those past their end "
        "(twin of outcomes.evaluate_experiments)."
    )

    def handle(self, *args: object, **options: object) -> None:
        result = experiments_evaluate_due()
        self.stdout.write(
            self.style.SUCCESS(
                f"started {result['started']}, evaluated {result['evaluated']}, "
                f"completed {result['completed']}; {result['holdouts']} holdout(s) evaluated"
            )
        )
