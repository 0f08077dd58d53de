"""User-facing errors: each prints as one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class CLBenchError(Exception):
    """An error caused by user input; the CLI prints it on one line and exits 1."""


class WriteError(CLBenchError, OSError):
    """A file that could not be written (disk full, read-only, ...): one line naming it, and
    still an ``OSError`` for code that handles those."""


class DataError(CLBenchError):
    """Bad or missing data."""

    @classmethod
    def at(cls, path: str | Path, problem: str) -> DataError:
        return cls(f"{path}: {problem}")


def one_line(error: BaseException) -> str:
    """The user-facing line of an error, also when a DataLoader worker re-raised it.

    PyTorch re-raises worker exceptions with the worker traceback as message;
    the original ``Module.Class: message`` is its last line.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    last = lines[-1].strip()
    name = type(error).__name__
    for prefix in (f"{type(error).__module__}.{name}: ", f"{name}: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last


def first_line(error: BaseException, limit: int = 120) -> str:
    """The first non-empty line of an error's message (its type name when the message is empty)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(error).__name__
