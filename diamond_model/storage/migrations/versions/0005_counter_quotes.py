"""Quotes handed to customers at the counter are kept: number, who, when, customer, the stone and
what was printed, so a quote can be found by its number and reprinted as given.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counter_quotes",
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("given_by", sa.String(120), nullable=False),
        sa.Column("customer", sa.String(120), nullable=False),
        sa.Column("reference", sa.String(120), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("market_period", sa.String(7), nullable=False),
        sa.Column("stone", sa.JSON, nullable=False),
        sa.Column("printed", sa.JSON, nullable=False),
    )
    op.create_index("ix_counter_quotes_created_at", "counter_quotes", ["created_at"])
    op.create_index("ix_counter_quotes_customer", "counter_quotes", ["customer"])


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup taken before")
