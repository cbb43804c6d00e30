"""What the command groups share: exit codes, opening the pipeline, printing outcomes."""

from __future__ import annotations

from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.outcomes import RetrainOutcome
from diamond_model.settings import Settings

EXIT_OK, EXIT_INPUT, EXIT_BUSY, EXIT_NO_MODEL = 0, 1, 3, 4


def open_pipeline(settings: Settings) -> LearningLoop:
    pipeline = LearningLoop.from_settings(settings)
    pipeline.store.create_schema()
    return pipeline


def metrics_line(metrics: dict[str, float] | None) -> str:
    if not metrics:
        return "-"
    return (
        f"MAPE {metrics['mape']:.2f}%  MAE ${metrics['mae']:,.0f}  RMSE ${metrics['rmse']:,.0f}  "
        f"R² {metrics['r2']:.4f}  coverage {metrics.get('coverage') or float('nan'):.1f}%"
    )


def print_outcome(outcome: RetrainOutcome) -> None:
    for run in (outcome, *outcome.follow_ups):
        print(f"run {run.run_id}: {run.status}")
        for comparison in run.comparisons:
            print(f"  on {comparison.name} (n={comparison.n}):")
            print(f"    candidate  {metrics_line(comparison.candidate)}")
            print(f"    champion   {metrics_line(comparison.champion)}")
        if not run.comparisons and run.candidate_metrics:
            print(f"  candidate  {metrics_line(run.candidate_metrics)}")
        print(f"  {run.reason}")
    print(outcome.last.headline)


def print_findings(findings: object, kind: str) -> None:
    for row in findings.itertuples(index=False):  # type: ignore[attr-defined]
        where = f" [{row.column}]" if row.column else ""
        print(f"  line {row.line}{where} {kind}: {row.reason}")
