"""Where everything is kept: SQLAlchemy tables and their Alembic migrations, the store (uploads,
reads, writes), the retrain lease, backups and restores, and files written atomically.

Depends on `data` and `pricing` (a backup checks model artefacts); never on `learning`.
"""
