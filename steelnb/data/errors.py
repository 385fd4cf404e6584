"""The one error a reader raises for input it cannot use."""

from ..errors import SteelnbError


class DataError(SteelnbError):
    """Bad or missing input data; the message names the path and says what to do."""
