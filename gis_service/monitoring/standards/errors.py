"""Errors of the standards engine; each message says what was wrong and how to fix it."""

from __future__ import annotations


class StandardsError(ValueError):
    """Root of the standards engine's errors (bad input or a standard that does not apply)."""


class StandardDataError(StandardsError):
    """A standards data file is invalid; the message names the file and the key."""


class UnknownFactorError(StandardsError):
    """A factor or pollutant name or HJ 212 code is not one the standard knows."""


class NoStandardInForceError(StandardsError):
    """No implemented standard covers the observation date."""


class UnverifiedTableError(StandardsError):
    """``strict=True`` was asked and the computation needs a table marked unverified."""
