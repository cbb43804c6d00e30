"""The expert's access code: from settings, or generated once and kept in the instance folder."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from diamond_model.settings import Settings


def ensure_access_code(settings: Settings) -> tuple[str, bool]:
    """(code, newly_created). A generated code is written with owner-only permissions (0600)."""
    if settings.access_code is not None:
        return settings.access_code.get_secret_value(), False
    path = settings.access_code_file
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    code = secrets.token_urlsafe(18)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(code + "\n")
    return code, True


def current_access_code(settings: Settings) -> str | None:
    """The code in force, or None when none is configured or generated yet."""
    if settings.access_code is not None:
        return settings.access_code.get_secret_value()
    path: Path = settings.access_code_file
    return path.read_text().strip() if path.exists() else None


def check_access_code(settings: Settings, offered: str | None) -> bool:
    """Constant-time comparison of an offered code with the one in force."""
    expected = current_access_code(settings)
    if not expected or not offered:
        return False
    return hmac.compare_digest(expected.encode(), offered.strip().encode())
