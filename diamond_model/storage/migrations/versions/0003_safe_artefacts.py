"""Model artefacts get a content hash.

Artefacts of this release are compressed JSON (`diamond_model.pricing.artefact`), checked against
the SHA-256 recorded here before they are read. Existing rows keep their pickles and no hash: no
process unpickles them, and `init` re-saves the previous release's (format 2) in the new format
after reading them with an allow-list of classes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("artefact_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("downgrades are not supported: restore a backup taken before")
