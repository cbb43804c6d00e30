"""The schema of the first release, as its `create_all` made it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("uploaded_by", sa.String(120), nullable=False),
        sa.Column("uploaded_at", sa.DateTime, nullable=False),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("rows_accepted", sa.Integer, nullable=False),
        sa.Column("rows_rejected", sa.Integer, nullable=False),
        sa.Column("ignored_columns", sa.Text, nullable=False),
    )
    op.create_table(
        "appraisals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("carat", sa.Float, nullable=False),
        sa.Column("cut", sa.String(16), nullable=False),
        sa.Column("color", sa.String(2), nullable=False),
        sa.Column("clarity", sa.String(8), nullable=False),
        sa.Column("depth", sa.Float, nullable=False),
        sa.Column("table", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("x", sa.Float, nullable=False),
        sa.Column("y", sa.Float, nullable=False),
        sa.Column("z", sa.Float, nullable=False),
    )
    for column in ("batch_id", "cut", "color", "clarity"):
        op.create_index(f"ix_appraisals_{column}", "appraisals", [column])
    op.create_table(
        "rejected_rows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("column", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index("ix_rejected_rows_batch_id", "rejected_rows", ["batch_id"])
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("algorithm", sa.String(200), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("train_rows", sa.Integer, nullable=False),
        sa.Column("holdout_rows", sa.Integer, nullable=False),
        sa.Column("max_batch_id", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("calibration", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("training_seconds", sa.Float, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("artefact", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "champion_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "champion",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=True),
        sa.Column("changed_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=True),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("candidate_metrics", sa.JSON, nullable=True),
        sa.Column("champion_metrics", sa.JSON, nullable=True),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(120), nullable=True),
        sa.Column("acquired_at", sa.DateTime, nullable=True),
        sa.Column("expires_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "locks",
        "training_runs",
        "champion",
        "champion_events",
        "model_versions",
        "rejected_rows",
        "appraisals",
        "batches",
    ):
        op.drop_table(table)
