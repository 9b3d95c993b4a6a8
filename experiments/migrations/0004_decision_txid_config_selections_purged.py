"""The reward run's watermark and the retention purge (DESIGN.md §6): each decision's
inserting transaction, an index on it and a BRIN index on created_at (PostgreSQL only), and each config's
count of purged decisions."""

from django.db import migrations, models

from config.migrations_ops import AddTransactionId, postgresql_only


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0003_config_total_reward_sq"),
    ]

    operations = [
        AddTransactionId(model_name="decision"),
        migrations.AddField(
            model_name="strategyconfig",
            name="selections_purged",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        postgresql_only(
            "CREATE INDEX exp_decision_txid_idx ON experiments_decision (txid)",
            "DROP INDEX IF EXISTS exp_decision_txid_idx",
        ),
        postgresql_only(
            "CREATE INDEX exp_decision_created_brin ON experiments_decision "
            "USING brin (created_at)",
            "DROP INDEX IF EXISTS exp_decision_created_brin",
        ),
    ]
