from django.core.management.base import BaseCommand, CommandParser

from experiments.services.webhooks import (
    webhook_deliveries_deliver_due,
    webhook_deliveries_dispatch,
    webhook_delivery_attempt,
)


class Command(BaseCommand):
    help = (
        "Attempt every due webhook delivery in this process, each on its own (twin of "
        "experiments.deliver_webhooks; safe beside running workers)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", type=int, help="attempt this delivery only (if it is due)")
        parser.add_argument("--limit", type=int, help="attempt at most this many deliveries")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="hand the due deliveries to the workers instead, one task each",
        )

    def handle(self, *args: object, **options: object) -> None:
        limit = options.get("limit")
        if options.get("id") is not None:
            status = webhook_delivery_attempt(delivery_id=options["id"])  # type: ignore[arg-type]
            message = f"Delivery {options['id']}: {status or 'not due, nothing attempted'}."
        elif options.get("enqueue"):
            result = webhook_deliveries_dispatch(limit=limit)  # type: ignore[arg-type]
            message = f"Handed {result['dispatched']} due delivery(ies) to the workers."
        else:
            counts = webhook_deliveries_deliver_due(limit=limit)  # type: ignore[arg-type]
            message = (
                f"Delivered {counts['delivered']}, {counts['retrying']} to retry, "
                f"{counts['failed']} failed for good."
            )
        self.stdout.write(self.style.SUCCESS(message))
