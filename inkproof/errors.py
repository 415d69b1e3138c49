"""Typed errors raised by inkproof.

Every error a caller can act on derives from :class:`InkproofError`, so surfaces (CLI, REST
service) can turn them into clear messages without ever showing a traceback.
"""

from __future__ import annotations


class InkproofError(Exception):
    """Base class of every error inkproof raises on purpose."""


class InvalidImageError(InkproofError, ValueError):
    """An input could not be used as an image.

    ``source`` names the input (a path, or a short description such as ``"<bytes: 12 B>"``) and
    ``reason`` says what was wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class NoInkError(InvalidImageError):
    """An image with no signature ink: blank, uniform or too faint to tell ink from paper.

    Two such images embed alike, so comparing them would call them the same writer."""

    def __init__(self, source: str) -> None:
        super().__init__(source, "no signature ink found (blank or uniform image)")


class DatasetFormatError(InkproofError, ValueError):
    """A dataset folder or pair file does not match any known (or the requested) layout."""


class EmptyDatasetError(InkproofError, ValueError):
    """A dataset, split or selection holds no usable signatures."""


class SplitError(InkproofError, ValueError):
    """Writer splits are impossible (too few writers) or inconsistent (overlapping writers)."""


class UnknownWriterError(InkproofError, KeyError):
    """A writer id that the dataset or store does not know."""

    def __init__(self, writer: str) -> None:
        self.writer = writer
        super().__init__(writer)

    def __str__(self) -> str:
        return f"unknown writer: {self.writer!r}"
