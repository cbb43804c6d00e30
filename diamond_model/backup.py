"""Backups that restore faithfully, and CSV exports for people.

A backup is one zip file: a manifest (schema revision, row counts, price sum, champion) and every
table as JSON lines, model artefacts as binary entries. Tables are streamed a chunk at a time
both ways, so a store of any size fits. `restore` writes into an empty database in one
transaction (a failure leaves it empty) and checks the counts against the manifest. Both write
through a temporary file renamed into place: a killed backup leaves no truncated file behind.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Date, DateTime, LargeBinary, Table, func, select, text

from diamond_model import migrate
from diamond_model.csvfile import neutralise_formulas
from diamond_model.files import atomic_file, check_folder, check_target
from diamond_model.schema import APPRAISAL_COLUMNS, APPRAISED_ON
from diamond_model.store import Store
from diamond_model.tables import Appraisal, Base, Champion

FORMAT = 1
CHUNK = 5_000
# Parents before children, so foreign keys hold at every insert.
TABLES = (
    "batches",
    "appraisals",
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
)


class BackupError(ValueError):
    """The backup cannot be restored here; the message says why."""


def _encode(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _rows(store: Store, table: Table) -> Iterator[dict[str, object]]:
    key = list(table.primary_key.columns)
    with store.engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK).execute(select(table).order_by(*key))
        for row in result.mappings():
            yield {name: _encode(value) for name, value in row.items()}


def manifest(store: Store) -> dict[str, object]:
    """Counts of every table, the sum of all prices, and the champion: what a restore must match."""
    with store.engine.connect() as connection:
        counts = {
            name: int(
                connection.execute(
                    select(func.count()).select_from(Base.metadata.tables[name])
                ).scalar()
                or 0
            )
            for name in TABLES
        }
        price_sum = float(connection.execute(select(func.sum(Appraisal.price))).scalar() or 0.0)
        champion = connection.execute(select(Champion.version).where(Champion.id == 1)).scalar()
        revision = migrate.current(connection)
    return {
        "format": FORMAT,
        "schema": revision,
        "created_at": datetime.now().isoformat(timespec="seconds"),
        "counts": counts,
        "price_sum": round(price_sum, 2),
        "champion": champion,
    }


def backup(store: Store, path: Path, overwrite: bool = False) -> dict[str, object]:
    """Write the whole store to `path` (a zip file); returns the manifest."""
    summary = manifest(store)
    with atomic_file(path, overwrite) as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(summary, indent=2))
            for name in TABLES:
                with archive.open(f"{name}.jsonl", "w") as entry:
                    for row in _rows(store, Base.metadata.tables[name]):
                        entry.write((json.dumps(row) + "\n").encode())
    return summary


def _decoder(table: Table) -> dict[str, object]:
    convert: dict[str, object] = {}
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
                    row[column] = parse(row[column])  # type: ignore[operator]
            chunk.append(row)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def restore(store: Store, path: Path) -> list[str]:
    """Restore a backup into an empty database (schema at the backup's revision or later)."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file; give the path of a backup made by `backup`.")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise BackupError(f"{path} is not a backup (not a zip file): {error}") from error
    with archive:
        try:
            expected = json.loads(archive.read("manifest.json"))
        except KeyError as error:
            raise BackupError(
                f"{path} has no manifest.json: not a backup of this product"
            ) from error
        store.create_schema()
        if any(manifest(store)["counts"][name] for name in ("batches", "model_versions")):
            raise BackupError(
                "The database is not empty. Restore into a new database: point "
                "DIAMOND_DATABASE_URL at an empty one (or move the SQLite file away) first."
            )
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
    found = manifest(store)
    if found["counts"] != expected["counts"] or found["price_sum"] != expected["price_sum"]:
        raise BackupError(
            f"Restored, but the counts differ from the backup's manifest: {found['counts']} vs "
            f"{expected['counts']}; do not use this database."
        )
    counts = expected["counts"]
    return [
        f"restored {path.name} (made {expected['created_at']}, schema {expected['schema']}): "
        f"{counts['appraisals']:,} appraisals in {counts['batches']:,} batches, "
        f"{counts['model_versions']} model versions, champion v{expected['champion']}",
        "counts and price sum match the backup's manifest",
    ]


def _reset_sequences(connection: object) -> None:
    """PostgreSQL: continue every id sequence after the restored rows."""
    for table in Base.metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) == 1 and key[0].autoincrement is not False and key[0].type.python_type is int:
            connection.execute(  # type: ignore[attr-defined]
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
