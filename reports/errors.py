"""What a report can lack, as typed errors: light to import, so the command line can word them without
loading what a report needs (pandas, matplotlib)."""
from __future__ import annotations

from study.errors import UserError
from study.store import NoStore


class ReportError(UserError):
    """The studies or runs a report needs are missing or unusable."""


class NoStoreToRead(ReportError, NoStore):
    """A report reads a store; there is none at this SQLite path (and reading never creates one)."""


class NoStudies(ReportError):
    """The store exists but holds no study."""

    def __init__(self, url: str) -> None:
        super().__init__(f"no studies in {url}")
        self.url = url


class NoFinalRuns(ReportError):
    """A study has no final runs: its numbers would have to come from validation images, which the search
    chose its best trial on. A report says so at its top, so only a partial one may."""

    def __init__(self, study: str) -> None:
        super().__init__(f"study {study} has no final runs, so the report would show its best trial's run on "
                         "validation images (which the search chose it on) instead of final runs on test images; "
                         "train its final runs, or pass «partial» for a report on validation that says so on its "
                         "first line")
        self.study = study


class MissingRegime(ReportError):
    """A regime has no study, and the report is not partial: ``missing`` (the first regime missing)
    would need a search, or the report could cover ``have`` alone."""

    def __init__(self, message: str, missing: str, have: str) -> None:
        super().__init__(message)
        self.missing, self.have = missing, have
