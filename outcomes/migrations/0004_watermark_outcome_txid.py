"""Incremental recomputation (DESIGN.md §6): a watermark per task and each outcome's
inserting transaction with an index (PostgreSQL only); the created_at index that the old
watermark read is gone."""

from django.db import migrations, models

from config.migrations_ops import AddTransactionId, postgresql_only


class Migration(migrations.Migration):
    dependencies = [
        ("outcomes", "0003_effectiveness_outcome_counts"),
    ]

    operations = [
        migrations.CreateModel(
            name="Watermark",
            fields=[
                ("task", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("state", models.JSONField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.RemoveIndex(
            model_name="outcome",
            name="out_outcome_created_idx",
        ),
        AddTransactionId(model_name="outcome"),
        postgresql_only(
            "CREATE INDEX out_outcome_txid_idx ON outcomes_outcome (txid)",
            "DROP INDEX IF EXISTS out_outcome_txid_idx",
        ),
    ]
