"""Errors a user can act on. The CLI prints their message and exits with the error's code (2, or 3)."""

from __future__ import annotations


class RegbenchError(Exception):
    """A problem with the user's input (spec, data, name, file): a clear message, exit code 2."""

    exit_code = 2


class SpecError(RegbenchError):
    """A task, model or metric-suite YAML that does not validate."""

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file, self.field = file, field
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {message}")


class UnknownNameError(RegbenchError):
    """A task, model, metric or format name that is not registered."""


class DataError(RegbenchError):
    """A dataset file that is missing or malformed."""


class WeightsMissingError(RegbenchError):
    """Model weights a metric needs are not on this machine."""


class ModelUnavailableError(RegbenchError):
    """A model endpoint or checkpoint that cannot be reached or loaded: the run is incomplete, exit code 3."""

    exit_code = 3
