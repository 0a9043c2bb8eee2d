"""The one exception type for bad user input and unrecoverable run conditions.

The CLI turns a `UserError` into one line on stderr and exit code 2; notebooks see the exception
(a `ValueError`, so `except ValueError` catches bad arguments as usual).
"""


class UserError(ValueError):
    """Bad input (argument, flag, config, data, workdir) or a run that must stop; the message is one line."""
