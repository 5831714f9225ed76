"""Exceptions raised by phicalc. Each one names the offending input in its message."""

from __future__ import annotations


class PhicalcError(Exception):
    """Base class of all phicalc errors."""


class ModelFileError(PhicalcError, ValueError):
    """A model or checkpoint file is missing, corrupt, foreign or of an unsupported version."""


class UnknownElementError(PhicalcError, ValueError):
    """A structure holds an element the model was not trained on."""


class BadGeometryError(PhicalcError, ValueError):
    """Positions or cell are not usable: NaN/inf values, overlapping atoms, a singular cell."""


class DatasetError(PhicalcError, ValueError):
    """A dataset file is malformed; the message names the file and the problem."""


class ConfigError(PhicalcError, ValueError):
    """A configuration has an unknown key or a value outside the allowed set."""


class ChargeStateError(PhicalcError, ValueError):
    """A total charge or spin multiplicity the model was not built to take."""


class SimulationError(PhicalcError, RuntimeError):
    """A simulation ran but failed (it blew up); the message names the step and the reason.

    ``summary`` holds the summary written for the failed run, where there is one.
    """

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class NonFiniteResultError(PhicalcError, ValueError):
    """The model returned NaN or infinite values for a structure (far outside its training)."""


class ExtrapolationWarning(UserWarning):
    """A structure is far outside what a model can have been trained on; its numbers are not
    to be trusted (atoms much closer than bonded, per-atom energies far from the references)."""
