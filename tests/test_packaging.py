"""The core is a package: a wheel built from the checkout, installed into a fresh environment
outside it, initialises a database (bundled data and migrations travel inside) and prices a file."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_initialises_and_predicts(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    wheel = next(wheels.glob("diamond_model-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from this environment's site-packages (no download in the test);
    # a plain path in a .pth file does not load this checkout's editable-install hook.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    where = subprocess.run(
        [str(python), "-c", "import diamond_model; print(diamond_model.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(venv)), f"imported {where}, not the installed wheel"

    env = {key: value for key, value in os.environ.items() if not key.startswith("DIAMOND_")} | {
        "DIAMOND_INSTANCE_DIR": str(tmp_path / "instance")
    }
    init = subprocess.run(
        [str(python), "-m", "diamond_model", "init"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert init.returncode == 0, init.stderr
    assert "stored diamonds.csv: 4,989 appraisals" in init.stdout
    assert "database schema upgraded from empty to" in init.stdout
    stones = tmp_path / "stones.csv"
    stones.write_text("carat,cut,color,clarity\n1.0,Ideal,G,VS2\n0.5,Good,E,SI1\n")
    predict = subprocess.run(
        [
            str(python),
            "-m",
            "diamond_model",
            "predict",
            str(stones),
            "-o",
            str(tmp_path / "out.csv"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predict.returncode == 0, predict.stderr
    assert "priced 2 of 2 rows with model v1" in predict.stdout
