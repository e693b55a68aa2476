"""Errors of the inference layer; both are bad input, so the CLI prints one line and exits 2."""
from __future__ import annotations

from study.errors import UserError


class InputError(UserError):
    """One input (image, folder, video) cannot be used; the other inputs are still processed."""


class InputsFailed(UserError):
    """Raised after every input was tried, so the exit status says that some of them failed."""

    def __init__(self, failed: int, total: int) -> None:
        super().__init__(f"{failed} of {total} input(s) failed (each is named above); fix or remove them and rerun")
