"""exploration.ipynb runs top to bottom against the current package, and ships with its outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "exploration.ipynb"


def outputs(notebook: nbformat.NotebookNode, kind: str) -> list[dict]:
    return [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == kind
    ]


def test_committed_notebook_has_its_outputs_and_stays_small() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert NOTEBOOK.stat().st_size < 5_000_000
    images = [o for o in outputs(notebook, "display_data") if "image/png" in o.get("data", {})]
    assert len(images) >= 15, "figures are committed as PNG"
    assert not outputs(notebook, "error")


def test_notebook_executes_top_to_bottom(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"):
        pytest.skip("the notebook renders figures with kaleido, which needs Debian's chromium")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    assert not outputs(notebook, "error")
    text = "\n".join(o.get("text", "") for o in outputs(notebook, "stream"))
    assert "accepted 4,990, rejected 10" in text
    assert "imply a weight beyond the tolerance (log gap > 0.1): 4 of 5,000 (0.08%)" in text
    assert "Size 1.01 ct (6.33 × 6.28 × 3.99 mm) adds" in text
    assert "unconstrained better in" in text and "the millimetres imply 0.87 ct" in text
    accuracy = re.search(r"shipped model: MAPE ([\d.]+) % .*MAE \$(\d+)", text)
    assert accuracy and float(accuracy.group(1)) <= 7.0 and int(accuracy.group(2)) <= 300
    ranges = re.search(
        r"shipped ranges: coverage ([\d.]+) %, worst carat band ([\d.]+) %, worst cut ([\d.]+) %, "
        r"worst price band ([\d.]+) %, median width ([\d.]+) %",
        text,
    )
    assert ranges, "the range targets are printed"
    overall, carat, cut, price, width = (float(v) for v in ranges.groups())
    assert 89 <= overall <= 92 and min(carat, cut, price) >= 88 and width <= 31
    moved = re.search(r"median signed error ([+-][\d.]+) %", text)
    assert moved and abs(float(moved.group(1))) <= 4, "the market move is followed"
    poisoned = re.search(r"largest move of a quote after the poisoned batch: ([\d.]+) %", text)
    assert poisoned and float(poisoned.group(1)) < 1, "the poisoned batch moves no quote"
