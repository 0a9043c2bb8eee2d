"""The one exception type for bad user input and unrecoverable run conditions.

The CLI turns a `UserError` into one line on stderr and exit code 2; notebooks see the exception
(a `ValueError`, so `except ValueError` catches bad arguments as usual).
"""


class UserError(ValueError):
    """Bad input (argument, flag, config, data, workdir) or a run that must stop; the message is one line."""


def first_line(e: BaseException) -> str:
    """`TypeName: first line` of an exception's message (at most 300 characters), for one-line errors."""
    text = [t.strip() for t in str(e).strip().splitlines() if t.strip()]
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__
