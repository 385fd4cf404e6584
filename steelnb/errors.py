"""`SteelnbError`: the base of every error that is the user's input, files or machine, not a bug.

The command line prints such an error as one line (`steelnb: error: ...`) and exits with status 2; its
message names the file, flag or field at fault and says what to do. Anything else is a bug: one line too,
with exit status 1, and its traceback with `--debug`.
"""


class SteelnbError(Exception):
    """An ordinary problem with the input, a file or the environment; the message says what to do."""


class SteelnbWarning(UserWarning):
    """Something the user should know that does not stop the work (the command line prints it as one line)."""
