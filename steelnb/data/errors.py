"""The one error a reader raises for input it cannot use."""


class DataError(Exception):
    """Bad or missing input data; the message names the path and says what to do."""
