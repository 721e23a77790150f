"""The exception type that the CLI turns into a single clear line instead of a traceback, and the warning type it
prints as a note."""


class ArscaleError(Exception):
    """A user-facing error: bad input, a missing file, a config that does not fit the model."""


class ArscaleWarning(UserWarning):
    """A setting that cannot act as asked (the run goes on): the CLI prints it as a `note:` line."""
