"""A version keeps two fits of one recipe: the served model, fitted on every appraisal, and its
exam, fitted without the held-out ones, which the gate and the history judge.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as table:
        table.add_column(sa.Column("exam_artefact", sa.LargeBinary, nullable=True))
        table.add_column(sa.Column("exam_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup taken before")
