"""The one exception type that the CLI turns into a single clear line instead of a traceback."""


class ArscaleError(Exception):
    """A user-facing error: bad input, a missing file, a config that does not fit the model."""
