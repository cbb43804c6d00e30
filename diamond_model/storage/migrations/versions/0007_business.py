"""What the owner's Business page needs: a price per 1,000 stones for each client key (none: the
installation's default), and the requests refused for a limit counted apart from errors.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("price_per_1000", sa.Float, nullable=True))
    with op.batch_alter_table("usage") as table:
        table.add_column(sa.Column("refused", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup taken before")
