"""Backups that restore faithfully, and CSV exports for people.

A backup is one zip file: a manifest (schema revision, row counts, price sum, champion) and every
table as JSON lines, model artefacts as binary entries. Tables are streamed a chunk at a time
both ways, so a store of any size fits.

A backup is one snapshot: the manifest and every table are read in one transaction (REPEATABLE
READ on PostgreSQL; on SQLite, the database is first copied by SQLite's own backup API, which
holds one read snapshot for the copy), so a backup taken while the API records quotes and the
expert uploads still matches its own manifest. The file is created readable by its owner only
(0600): it holds key hashes, client quotes and models.

A backup file is untrusted input. `restore` writes into an empty database in one transaction
and, before it commits, checks the counts against the manifest and every model artefact against
its recorded hash and format (`artefact.read`: nothing in a backup is ever unpickled); any
mismatch rolls the whole restore back and says why in words.
"""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import cast

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    LargeBinary,
    Table,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from diamond_model.data.reading import neutralise_formulas
from diamond_model.data.schema import APPRAISAL_COLUMNS, APPRAISED_ON
from diamond_model.pricing import artefact
from diamond_model.pricing.model import MODEL_FORMAT
from diamond_model.storage import migrate
from diamond_model.storage.atomic import atomic_file, check_folder, check_target
from diamond_model.storage.store import Store
from diamond_model.storage.tables import Appraisal, Base, ChampionPointer, ModelVersion

FORMAT = 1
CHUNK = 5_000
# Parents before children, so foreign keys hold at every insert.
TABLES = (
    "batches",
    "appraisals",
    "corrections",
    "rejected_rows",
    "set_aside",
    "model_versions",
    "champion_events",
    "champion",
    "training_runs",
    "locks",
    "api_keys",
    "usage",
    "counters",
    "quotes",
    "counter_quotes",
    "people",
    "audit",
)


class BackupError(ValueError):
    """The backup cannot be restored here; the message says why."""


def _encode(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _rows(connection: Connection, table: Table) -> Iterator[dict[str, object]]:
    key = list(table.primary_key.columns)
    result = connection.execution_options(yield_per=CHUNK).execute(select(table).order_by(*key))
    for row in result.mappings():
        yield {name: _encode(value) for name, value in row.items()}


def _counts(connection: Connection) -> dict[str, int]:
    return {
        name: int(
            connection.execute(
                select(func.count()).select_from(Base.metadata.tables[name])
            ).scalar()
            or 0
        )
        for name in TABLES
    }


def _manifest(connection: Connection) -> dict[str, object]:
    price_sum = float(connection.execute(select(func.sum(Appraisal.price))).scalar() or 0.0)
    return {
        "format": FORMAT,
        "schema": migrate.current(connection),
        "created_at": datetime.now().isoformat(timespec="seconds"),
        "counts": _counts(connection),
        "price_sum": round(price_sum, 2),
        "champion": connection.execute(
            select(ChampionPointer.version).where(ChampionPointer.id == 1)
        ).scalar(),
    }


def manifest(store: Store) -> dict[str, object]:
    """Counts of every table, the sum of all prices, and the champion: what a restore must match."""
    with store.engine.connect() as connection:
        return _manifest(connection)


@contextmanager
def _snapshot(store: Store) -> Iterator[Connection]:
    """A connection that sees one moment of the store for as long as it is open."""
    if store.engine.dialect.name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="diamond-backup-") as folder:
            copy = Path(folder) / "snapshot.sqlite3"
            source = store.engine.raw_connection()
            try:
                with sqlite3.connect(copy) as target:
                    sqlite = cast(sqlite3.Connection, source.driver_connection)  # a SQLite engine
                    sqlite.backup(target)
            finally:
                source.close()
            engine = create_engine(f"sqlite:///{copy}")
            try:
                with engine.connect() as connection:
                    yield connection
            finally:
                engine.dispose()
        return
    with store.engine.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    ) as connection:
        with connection.begin():
            yield connection


def backup(store: Store, path: Path, overwrite: bool = False) -> dict[str, object]:
    """Write the whole store to `path` (a zip file, mode 0600) as one snapshot; returns the
    manifest."""
    with _snapshot(store) as connection:
        summary = _manifest(connection)
        with atomic_file(path, overwrite, mode=0o600) as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("manifest.json", json.dumps(summary, indent=2))
                for name in TABLES:
                    with archive.open(f"{name}.jsonl", "w") as entry:
                        for row in _rows(connection, Base.metadata.tables[name]):
                            entry.write((json.dumps(row) + "\n").encode())
    return summary


def _decoder(table: Table) -> dict[str, Callable[[str], object]]:
    convert: dict[str, Callable[[str], object]] = {}
    for column in table.columns:
        if isinstance(column.type, DateTime):
            convert[column.name] = datetime.fromisoformat
        elif isinstance(column.type, Date):
            convert[column.name] = date.fromisoformat
        elif isinstance(column.type, LargeBinary):
            convert[column.name] = base64.b64decode
    return convert


def _read(archive: zipfile.ZipFile, name: str, table: Table) -> Iterator[list[dict[str, object]]]:
    convert = _decoder(table)
    chunk: list[dict[str, object]] = []
    with archive.open(f"{name}.jsonl") as entry:
        for line in io.TextIOWrapper(entry, encoding="utf-8"):
            row = json.loads(line)
            for column, parse in convert.items():
                if row.get(column) is not None:
                    row[column] = parse(row[column])
            chunk.append(row)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _check_artefacts(connection: Connection) -> list[str]:
    """Every restored model of this release's format must match its hash and parse; older
    formats are kept as records (never read here; `init` re-saves the previous release's)."""
    older = 0
    rows = connection.execute(
        select(
            ModelVersion.version,
            ModelVersion.format,
            ModelVersion.artefact,
            ModelVersion.artefact_sha256,
            ModelVersion.exam_artefact,
            ModelVersion.exam_sha256,
        ).order_by(ModelVersion.version)
    )
    for version, fmt, blob, sha256, exam, exam_sha256 in rows:
        if fmt != MODEL_FORMAT:
            older += 1
            continue
        try:
            artefact.read(blob, sha256)
            if exam is not None:
                artefact.read(exam, exam_sha256)
        except artefact.ArtefactError as error:
            raise BackupError(
                f"Model version {version} in the backup is refused: {error}. Nothing was "
                "restored; use an untouched backup."
            ) from error
    if not older:
        return []
    return [
        f"{older} model version(s) of an earlier release kept as records; `init` re-saves "
        "the previous release's in the safe format"
    ]


def _occupied(store: Store) -> list[str]:
    counts = cast(dict[str, int], manifest(store)["counts"])  # as `_counts` made them
    made_by_schema = {"champion", "locks"}  # create_schema's singleton rows
    return [name for name in TABLES if name not in made_by_schema and counts[name]]


def restore(store: Store, path: Path) -> list[str]:
    """Restore a backup into an empty database (schema at the backup's revision or later);
    verified before it commits, so a refused backup leaves the database as it was."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file; give the path of a backup made by `backup`.")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise BackupError(f"{path} is not a backup (not a zip file): {error}") from error
    with archive:
        try:
            expected = json.loads(archive.read("manifest.json"))
            expected_counts = dict(expected["counts"])
        except (KeyError, TypeError, ValueError) as error:
            raise BackupError(
                f"{path} has no readable manifest.json: not a backup of this product"
            ) from error
        store.create_schema()
        occupied = _occupied(store)
        if occupied:
            raise BackupError(
                f"The database is not empty (it holds {', '.join(occupied)}). Restore into a new "
                "database: point DIAMOND_DATABASE_URL at an empty one (or move the SQLite file "
                "away) first."
            )
        notes: list[str] = []
        try:
            with store.engine.begin() as connection:
                for name in ("champion", "locks"):  # made by create_schema; the backup has them
                    connection.execute(Base.metadata.tables[name].delete())
                for name in TABLES:
                    table = Base.metadata.tables[name]
                    if f"{name}.jsonl" not in archive.namelist():
                        continue
                    for chunk in _read(archive, name, table):
                        connection.execute(table.insert(), chunk)
                if connection.dialect.name == "postgresql":
                    _reset_sequences(connection)
                found = _manifest(connection)
                counts = cast(dict[str, int], found["counts"])  # as `_counts` made them
                # A table newer than the backup is empty after it and absent from its manifest.
                counts = {k: v for k, v in counts.items() if k in expected_counts or v}
                if counts != expected_counts or found["price_sum"] != expected.get("price_sum"):
                    differ = {
                        name: (counts.get(name), expected_counts.get(name))
                        for name in TABLES
                        if counts.get(name) != expected_counts.get(name)
                    }
                    raise BackupError(
                        "The backup does not match its own manifest "
                        + (
                            f"(rows found vs promised: {differ})"
                            if differ
                            else f"(price sum {found['price_sum']} vs {expected.get('price_sum')})"
                        )
                        + "; nothing was restored."
                    )
                notes = _check_artefacts(connection)
        except IntegrityError as error:
            raise BackupError(
                "The backup's rows clash with each other or with this database "
                f"({type(error.orig).__name__}); nothing was restored. Restore into an empty "
                "database."
            ) from None
    counts = expected_counts
    return [
        f"restored {path.name} (made {expected.get('created_at')}, "
        f"schema {expected.get('schema')}): "
        f"{counts['appraisals']:,} appraisals in {counts['batches']:,} batches, "
        f"{counts['model_versions']} model versions, champion v{expected.get('champion')}",
        *notes,
        "counts and price sum match the backup's manifest, and every model its hash: checked "
        "before the restore was committed",
    ]


def _reset_sequences(connection: Connection) -> None:
    """PostgreSQL: continue every id sequence after the restored rows."""
    for table in Base.metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) == 1 and key[0].autoincrement is not False and key[0].type.python_type is int:
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key[0].name}'), "
                    f"COALESCE((SELECT MAX({key[0].name}) FROM {table.name}), 0) + 1, false)"
                )
            )


def export_csv(store: Store, folder: Path, overwrite: bool = False) -> list[Path]:
    """appraisals.csv, rejected.csv and set_aside.csv for people: spreadsheet formulas
    neutralised in every cell and header, each file written whole or not at all."""
    check_folder(folder)
    names = ("appraisals.csv", "rejected.csv", "set_aside.csv")
    for name in names:  # refuse before writing anything
        check_target(folder / name, overwrite)
    written = []
    batches = store.batches().set_index("id")
    withdrawn = batches["withdrawn_at"].notna()

    def appraisal_chunks() -> Iterator[bytes]:
        offset, header = 0, True
        while True:
            rows = store.appraisals(include_withdrawn=True, limit=50_000, offset=offset)
            if rows.empty and not header:
                return
            rows[APPRAISED_ON] = rows[APPRAISED_ON].dt.date
            rows["withdrawn"] = rows["batch_id"].map(withdrawn).fillna(False)
            columns = ["batch_id", "line", *APPRAISAL_COLUMNS, APPRAISED_ON, "withdrawn"]
            yield neutralise_formulas(rows[columns]).to_csv(index=False, header=header).encode()
            if len(rows) < 50_000:
                return
            header, offset = False, offset + len(rows)

    for name, content in (
        ("appraisals.csv", appraisal_chunks()),
        ("rejected.csv", [neutralise_formulas(store.rejected_rows()).to_csv(index=False).encode()]),
        (
            "set_aside.csv",
            [neutralise_formulas(store.set_aside_rows()).to_csv(index=False).encode()],
        ),
    ):
        target = folder / name
        with atomic_file(target, overwrite) as handle:
            for chunk in content:
                handle.write(chunk)
        written.append(target)
    return written
