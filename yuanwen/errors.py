"""Project exceptions. Messages are written for the user: they say what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class YuanwenError(Exception):
    """Base class of every error this project raises on purpose."""

    exit_code = 1


class UsageError(YuanwenError):
    """The user asked for something that cannot work (bad option, bad query)."""

    exit_code = 2


class BadQueryError(UsageError):
    """A query that is empty, only punctuation, or too long."""


class ReadError(YuanwenError):
    """One input file could not be read; the rest of the work goes on."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class KnowledgeBaseError(YuanwenError):
    """The knowledge base on disk is missing, locked, damaged or of another version."""


class EmbedderMismatchError(KnowledgeBaseError):
    """The knowledge base was built by another embedder than the one asked for."""


class EmbedderUnavailableError(YuanwenError):
    """An embedder's package or model files are not installed."""
