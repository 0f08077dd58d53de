"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Temporary files are ``.<name>.<random>.tmp`` beside the target; a process killed
mid-write leaves one behind, which ``remove_stale_temporaries`` deletes. An
``OSError`` while writing (disk full, read-only) is one ``CLBenchError`` line
naming the file; the previous file stays as it was."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cl_bench.errors import CLBenchError, WriteError

TEMPORARY_GLOB = ".*.tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cannot_write(path: str | Path, error: OSError) -> WriteError:
    """The one line of an ``OSError`` met writing ``path``."""
    return WriteError(f"{path}: cannot write ({error.strerror or error})")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.
    The file gets the mode a plain ``open`` would give (0666 less the umask)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as error:
        raise cannot_write(path, error) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically (serialise to memory first, e.g. ``torch.save`` into a
    ``BytesIO``, so a full disk is an ``OSError`` here and not inside the serialiser)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` when missing and write a probe file in it; a folder that
    cannot be created or written is one CLBenchError line naming it and why."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"probe")
    except OSError as error:
        raise CLBenchError(f"{folder.resolve()}: output folder is not writable ({error.strerror or error})") from None
    return folder


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder``; returns them.
    Call it only while no other process writes there (e.g. under the run lock)."""
    stale = sorted(folder.glob(TEMPORARY_GLOB))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
