"""Dates, set-aside measurements, withdrawals, live scores, leases that heartbeat, client keys,
usage, shared counters and quote records.

Existing appraisals get the upload date of their batch (the bundled file: its documented date),
and their stone keys are computed; existing model versions are kept for audit as format 1.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from alembic import op

from diamond_model.data.identity import stone_keys
from diamond_model.data.schema import APPRAISAL_COLUMNS, BUNDLED_APPRAISED_ON, BUNDLED_UPLOADER

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHUNK = 20_000


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(
            sa.Column("rows_duplicate", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("rows_set_aside", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("live", sa.JSON, nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("withdrawn_note", sa.Text, nullable=False, server_default=""))

    with op.batch_alter_table("appraisals") as batch:
        for name in ("depth", "table", "x", "y", "z"):
            batch.alter_column(name, existing_type=sa.Float, nullable=True)
        batch.add_column(sa.Column("appraised_on", sa.Date, nullable=True))
        batch.add_column(sa.Column("stone_key", sa.BigInteger, nullable=True))
    _fill_appraisals()
    with op.batch_alter_table("appraisals") as batch:
        batch.alter_column("appraised_on", existing_type=sa.Date, nullable=False)
        batch.alter_column("stone_key", existing_type=sa.BigInteger, nullable=False)
    op.create_index("ix_appraisals_appraised_on", "appraisals", ["appraised_on"])
    op.create_index("ix_appraisals_stone_key", "appraisals", ["stone_key"])
    op.create_index("ix_appraisals_grades_carat", "appraisals", ["color", "clarity", "carat"])

    op.create_table(
        "set_aside",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("column", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_set_aside_batch_id", "set_aside", ["batch_id"])

    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("reference_metrics", sa.JSON, nullable=True))
        batch.add_column(sa.Column("format", sa.Integer, nullable=False, server_default="1"))
        batch.drop_column("calibration")

    with op.batch_alter_table("training_runs") as batch:
        batch.alter_column(
            "trigger", existing_type=sa.String(32), type_=sa.String(120), existing_nullable=False
        )
        batch.add_column(sa.Column("data_fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("max_batch_id", sa.Integer, nullable=True))

    with op.batch_alter_table("locks") as batch:
        batch.add_column(
            sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("run_id", sa.Integer, nullable=True))

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("stones_per_day", sa.Integer, nullable=True),
        sa.Column("requests_per_minute", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "usage",
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
        sa.Column("hour", sa.DateTime, primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("stones", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
    )
    op.create_table(
        "counters",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_counters_expires_at", "counters", ["expires_at"])
    op.create_table(
        "quotes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("market_period", sa.String(7), nullable=False),
        sa.Column("stone", sa.JSON, nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
    )
    op.create_index("ix_quotes_created_at", "quotes", ["created_at"])
    op.create_index("ix_quotes_key_id", "quotes", ["key_id"])


def _fill_appraisals() -> None:
    """Date every stored appraisal by its batch and compute its stone key, a chunk at a time."""
    bind = op.get_bind()
    batches = sa.table(
        "batches",
        sa.column("id", sa.Integer),
        sa.column("uploaded_at", sa.DateTime),
        sa.column("uploaded_by", sa.String),
    )
    appraisals = sa.table(
        "appraisals",
        sa.column("id", sa.Integer),
        sa.column("batch_id", sa.Integer),
        sa.column("appraised_on", sa.Date),
        sa.column("stone_key", sa.BigInteger),
        *(sa.column(name) for name in APPRAISAL_COLUMNS),
    )
    for batch_id, uploaded_at, uploaded_by in bind.execute(
        sa.select(batches.c.id, batches.c.uploaded_at, batches.c.uploaded_by)
    ).all():
        day = BUNDLED_APPRAISED_ON if uploaded_by == BUNDLED_UPLOADER else uploaded_at.date()
        bind.execute(
            appraisals.update().where(appraisals.c.batch_id == batch_id).values(appraised_on=day)
        )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(appraisals.c.id, *(appraisals.c[name] for name in APPRAISAL_COLUMNS))
            .where(appraisals.c.id > last)
            .order_by(appraisals.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        frame = pd.DataFrame(rows, columns=["id", *APPRAISAL_COLUMNS])
        keys = stone_keys(frame)
        bind.execute(
            appraisals.update()
            .where(appraisals.c.id == sa.bindparam("row_id"))
            .values(stone_key=sa.bindparam("key")),
            [{"row_id": int(i), "key": int(k)} for i, k in zip(frame["id"], keys, strict=True)],
        )
        last = int(frame["id"].iloc[-1])


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup taken before")
