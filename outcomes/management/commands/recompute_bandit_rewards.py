from django.core.management.base import BaseCommand

from outcomes.services.rewards import bandit_rewards_recompute


class Command(BaseCommand):
    help = (
        "Rebuild every strategy config's bandit statistics "
        "(twin of outcomes.recompute_bandit_rewards)."
    )

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write("Recomputing bandit rewards from decisions and outcomes …")
        result = bandit_rewards_recompute()
        self.stdout.write(
            self.style.SUCCESS(f"Done: {result['updated']} of {result['configs']} configs changed.")
        )
