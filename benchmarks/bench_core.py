"""Core engine speed: validation, single quote, batch predict, retrain. Prints medians."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import bundled_appraisals, many_appraisals, report, timings

from diamond_model.pipeline import Pipeline
from diamond_model.quote import price_table, quote_stone
from diamond_model.schema import EXAMPLE_STONE
from diamond_model.settings import Settings
from diamond_model.training import fit_pricing_model
from diamond_model.validation import validate_csv

STONE = EXAMPLE_STONE


def main() -> None:
    print("== core (in-process) ==")
    rows = many_appraisals(50_000)
    csv_bytes = rows.to_csv(index=False).encode()
    _, check = validate_csv(csv_bytes, "appraisal")
    print(f"validation input: 50,000 distinct rows, {check.n_accepted:,} valid")
    report(
        "validate 50,000 rows (read + check)",
        timings(lambda: validate_csv(csv_bytes, "appraisal"), 7, 1),
        1000,
    )

    model = fit_pricing_model(bundled_appraisals())
    report(
        "quote 1 stone, explanation + interval",
        timings(lambda: quote_stone(model, STONE, 0.9), 500, 20),
        5,
    )
    report(
        "quote 1 stone, 4Cs only",
        timings(
            lambda: quote_stone(
                model, {k: STONE[k] for k in ("carat", "cut", "color", "clarity")}, 0.9
            ),
            500,
            20,
        ),
    )

    stones_csv = rows.drop(columns="price").to_csv(index=False).encode()
    report(
        "predict 50,000 rows (CSV in -> priced table)",
        timings(lambda: price_table(model, stones_csv, 0.9), 5, 1),
        3,
        unit="s",
    )

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(instance_dir=Path(folder), auto_retrain=False)
        pipeline = Pipeline.from_settings(settings)
        pipeline.store.create_schema()
        pipeline.store.ingest(bundled_appraisals().to_csv(index=False).encode(), "seed.csv")
        report(
            "retrain on 4,985 appraisals (train+gate+save)",
            timings(lambda: pipeline.retrain(force=True), 3, 1),
            15,
            unit="s",
        )
        pipeline.store.dispose()


if __name__ == "__main__":
    main()
