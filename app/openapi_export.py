"""Write the API's OpenAPI schema to docs/openapi.json: `python -m app.openapi_export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.api import create_app

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def render() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
