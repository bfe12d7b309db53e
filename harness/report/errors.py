"""The one error class of the report package: bad or missing run-directory input."""

from __future__ import annotations


class ReportInputError(ValueError):
    """A run directory (or one of its files) cannot be reported on; the message names the fix."""

    user_error = True
