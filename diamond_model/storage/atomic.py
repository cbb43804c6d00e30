"""Writing files people keep (exports, backups, priced lists) so that a crash never leaves half a
file: write a temporary file beside the target, flush it to disk, then rename it into place.

A target that exists is replaced only when asked; a symbolic link is never followed (an export
pointed at a link could overwrite whatever it points to); a bad target is an error in words.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast


class TargetError(ValueError):
    """The place to write is not usable; the message says why and what to do."""


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse links, folders, missing parents and (without `overwrite`) existing files."""
    if path.is_symlink():
        raise TargetError(f"{path} is a symbolic link; give the real path of the file to write.")
    if path.is_dir():
        raise TargetError(f"{path} is a folder; give a file name inside it.")
    if path.exists() and not overwrite:
        raise TargetError(f"{path} exists already; use --force to replace it.")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise TargetError(f"cannot write {path}: the folder {parent} {what}.")


def check_folder(folder: Path) -> None:
    """A folder to write into: created when missing, refused when it is a file."""
    if folder.exists() and not folder.is_dir():
        raise TargetError(f"{folder} is a file, not a folder; give a folder to write into.")
    folder.mkdir(parents=True, exist_ok=True)


@contextmanager
def atomic_file(path: Path, overwrite: bool, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` when the block ends without error, and nothing if not.
    `mode`: its permissions (default: an ordinary new file's, by the umask)."""
    check_target(path, overwrite)
    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False
    )
    try:
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # as an ordinary new file, not mkstemp's 0600
        os.chmod(handle.name, mode)
        with handle:
            yield cast(BinaryIO, handle)  # a NamedTemporaryFile is a binary file
            handle.flush()
            os.fsync(handle.fileno())
        if path.is_symlink():  # appeared while we wrote
            raise TargetError(f"{path} became a symbolic link while writing; nothing replaced.")
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, content: bytes | Iterable[bytes], overwrite: bool) -> Path:
    """Write `content` (bytes or chunks of bytes) to `path` all at once or not at all."""
    with atomic_file(path, overwrite) as handle:
        for chunk in [content] if isinstance(content, bytes) else content:
            handle.write(chunk)
    return path
