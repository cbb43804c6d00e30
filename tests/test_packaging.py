"""The core is a package: a wheel built from the checkout, installed into a fresh environment
outside it, initialises a database (bundled data and migrations travel inside) and prices a file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from streamlit import config as streamlit_config

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


def _pins(lock: str) -> dict[str, str]:
    """name -> version of every package a lock file pins (each with hashes)."""
    text = (ROOT / lock).read_text()
    pins = {}
    for block in re.split(r"\n(?=\S)", text):
        first = block.split(" ", 1)[0]
        if "==" in first and not first.startswith("#"):
            assert "--hash=sha256:" in block, f"{first} in {lock} has no hash"
            name, version = first.split("==")
            pins[canonicalize_name(name)] = version.split(";")[0]
    return pins


def test_the_environment_the_tests_run_in_is_the_lock() -> None:
    pins = _pins("requirements.txt")
    assert len(pins) > 100
    installed = {name: metadata.version(name) for name in pins}
    assert installed == pins, "make install installs exactly requirements.txt"


def test_each_kind_of_server_installs_only_what_it_needs() -> None:
    full, api, runtime = (
        _pins(f) for f in ("requirements.txt", "requirements-api.txt", "requirements-runtime.txt")
    )
    assert "streamlit" not in api and "pytest" not in api, "an API server has no dashboard"
    assert "streamlit" in runtime and "pytest" not in runtime and "playwright" not in runtime
    assert {"fastapi", "uvicorn", "lightgbm", "psycopg"} <= set(api)
    for name, version in {**api, **runtime}.items():
        assert full[name] == version, f"{name}: the locks disagree"


def test_the_lower_bounds_in_pyproject_are_the_tested_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for items in project["optional-dependencies"].values():
        wanted += [item for item in items if not item.startswith("diamond_model")]
    pins = _pins("requirements.txt")
    for requirement in map(Requirement, wanted):
        lowest = next((s.version for s in requirement.specifier if s.operator == ">="), None)
        assert lowest is not None, f"{requirement} has no lower bound"
        name = canonicalize_name(requirement.name)
        if name == "setuptools":  # only builds this package
            continue
        assert pins[name] == lowest, f"{name}: lower bound {lowest}, tested {pins[name]}"


def test_the_api_does_not_import_the_dashboards_libraries() -> None:
    probe = "import sys, app.api; print(sorted({'streamlit', 'pytest'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile line, continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(" ", 1)) for line in lines if line and not line.startswith("#")]


def test_the_images_commands_are_the_ones_the_tests_run() -> None:
    from app.api import create_app
    from app.server import build_parser
    from diamond_model.cli.commands import build_parser as cli_parser

    services = _compose()
    assert set(services) == {"postgres", "setup", "api", "dashboard", "retrain"}
    docker = dict(_dockerfile())
    api = services["api"]["command"]
    assert json.loads(docker["CMD"]) == api, "the image's default process is the API"
    assert api[:3] == ["python", "-m", "app.server"]
    _, unknown = build_parser().parse_known_args(api[3:])
    assert unknown == [], "every flag is app.server's own (the e2e tests start it the same way)"
    for name, expected in (("setup", "init"), ("retrain", "retrain")):
        line = " ".join(services[name]["command"])
        found = re.findall(r"python -m diamond_model (\w+)", line)
        assert found == [expected], line
        cli_parser().parse_args(found)  # a command the CLI (and its tests) know
    dashboard = services["dashboard"]["command"]
    assert dashboard[:3] == ["streamlit", "run", "streamlit_app.py"]
    for option in dashboard[3::2]:
        streamlit_config.get_option(option.removeprefix("--"))  # raises for an unknown option
    routes = create_app().openapi()["paths"]
    assert "/health/live" in routes and "/health/live" in docker["HEALTHCHECK"]
    assert "/health/live" in str(services["api"]["healthcheck"]["test"])
    assert "/_stcore/health" in str(services["dashboard"]["healthcheck"]["test"])


def test_the_image_installs_the_lock_and_runs_as_nobody_in_particular() -> None:
    steps = _dockerfile()
    runs = " ".join(arguments for instruction, arguments in steps if instruction == "RUN")
    assert "--require-hashes --no-deps -r requirements-runtime.txt" in runs
    assert dict(steps)["USER"] not in ("root", "0")
    python = re.fullmatch(r"python:(\d+\.\d+)-slim-\w+", dict(steps)["FROM"])
    assert python and python.group(1) == "3.11"
    for instruction, arguments in steps:
        if instruction == "COPY":
            for source in arguments.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
