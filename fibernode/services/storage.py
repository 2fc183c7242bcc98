"""Files on disk: atomic writes and removal of old files (no database, no actor).

One home for what generated files (exports, receipt bundles), uploads (logos,
payment proofs), backup manifests and the nightly cleanup all need.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file renamed into place when the block ends.

    Readers see the old file or the complete new one, never a half-written one; on
    an error the temporary file is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def older_than(path: Path, cutoff: float) -> bool:
    """Whether ``path`` itself (a symlink is not followed) was modified before ``cutoff``."""
    try:
        return path.lstat().st_mtime < cutoff
    except OSError:
        return False


def delete_old_files(root: Path, cutoff: float, *, keep: Callable[[Path], bool] | None = None,
                     pattern: str = "*", recursive: bool = True) -> list[Path]:
    """Delete files (and symlinks, never followed) under ``root`` older than ``cutoff``.

    Args:
        root: The directory to clean; a missing one is nothing to do.
        cutoff: POSIX time; files modified since are kept (they may be in use).
        keep: Files for which this returns true are kept whatever their age.
        pattern: Glob pattern of the file names considered.
        recursive: Also look in subdirectories.

    Returns:
        The deleted paths.
    """
    if not root.is_dir():
        return []
    deleted = []
    for path in (root.rglob(pattern) if recursive else root.glob(pattern)):
        if not (path.is_symlink() or path.is_file()):
            continue
        if not older_than(path, cutoff) or (keep is not None and keep(path)):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError:  # e.g. no permission: the rest of the cleanup still runs
            log.warning("cannot delete %s", path, exc_info=True)
            continue
        deleted.append(path)
    return deleted
