"""Migration operations shared by the apps' migrations."""

from typing import Any

from django.db import migrations, models

from config.db import CurrentTransactionId


def postgresql_only(sql: str, reverse_sql: str) -> migrations.RunPython:
    """SQL for PostgreSQL only (indexes SQLite does not need or have); a no-op elsewhere."""

    def run(statement: str) -> Any:
        def apply(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(sql), run(reverse_sql))


class AddTransactionId(migrations.AddField):
    """AddField of a `txid` (config.db.CurrentTransactionId). On PostgreSQL the column is
    added without a default and the default set afterwards, so existing rows keep NULL and the
    table is not rewritten (a volatile default given with ADD COLUMN is evaluated for every
    existing row)."""

    def __init__(self, model_name: str, name: str = "txid", **kwargs: Any) -> None:
        kwargs.setdefault(
            "field",
            models.BigIntegerField(
                blank=True, db_default=CurrentTransactionId(), editable=False, null=True
            ),
        )
        super().__init__(model_name=model_name, name=name, **kwargs)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(self.name)
        schema_editor.execute(f"ALTER TABLE {table} ADD COLUMN {column} bigint NULL")
        schema_editor.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} "
            "SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
