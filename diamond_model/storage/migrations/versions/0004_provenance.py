"""Model versions record which batches they learned from and were judged on, and whether the gate
refused them; suspect prices can be held for review; corrections, people (personal sign-in) and an
audit list of who did what are recorded; retried POSTs are answered once (idempotency).

`learned_from` is what makes withdrawal undo: a version that learned from a withdrawn batch stops
being servable. Existing versions are filled in from what the database still tells: the batches
up to the version's `max_batch_id` that were not already withdrawn when it was trained.
`gate_refused` keeps "the gate said no" through promotions and rollbacks (`status` tells where a
version stands now).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appraisals") as batch:
        batch.add_column(sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("rows_held", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("appraisal_id", sa.Integer, sa.ForeignKey("appraisals.id"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("by", sa.String(120), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
    )
    op.create_index("ix_corrections_appraisal_id", "corrections", ["appraisal_id"])
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("disabled_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("who", sa.String(120), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_table(
        "idempotency",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
    )
    op.create_index("ix_idempotency_created_at", "idempotency", ["created_at"])
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("learned_from", sa.JSON, nullable=True))
        batch.add_column(sa.Column("judged_on", sa.JSON, nullable=True))
        batch.add_column(
            sa.Column("gate_refused", sa.Boolean, nullable=False, server_default=sa.false())
        )
    connection = op.get_bind()
    versions = sa.table(
        "model_versions",
        sa.column("version", sa.Integer),
        sa.column("created_at", sa.DateTime),
        sa.column("max_batch_id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("learned_from", sa.JSON),
        sa.column("judged_on", sa.JSON),
        sa.column("gate_refused", sa.Boolean),
    )
    batches = sa.table(
        "batches", sa.column("id", sa.Integer), sa.column("withdrawn_at", sa.DateTime)
    )
    stored = connection.execute(sa.select(batches.c.id, batches.c.withdrawn_at)).all()
    rows = connection.execute(
        sa.select(
            versions.c.version, versions.c.created_at, versions.c.max_batch_id, versions.c.status
        )
    ).all()
    for version, created_at, max_batch_id, status in rows:
        learned = [
            batch_id
            for batch_id, withdrawn_at in stored
            if batch_id <= max_batch_id and (withdrawn_at is None or withdrawn_at > created_at)
        ]
        connection.execute(
            sa.update(versions)
            .where(versions.c.version == version)
            .values(learned_from=learned, judged_on=learned, gate_refused=status == "rejected")
        )


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup taken before")
