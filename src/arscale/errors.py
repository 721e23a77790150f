"""The exception type that the CLI turns into a single clear line instead of a traceback, and the warning type it
prints as a note."""


class ArscaleError(Exception):
    """A user-facing error: bad input, a missing file, a config that does not fit the model."""


class ArscaleWarning(UserWarning):
    """A setting that cannot act as asked (the run goes on): the CLI prints it as a `note:` line."""


def one_line_errors(main, prog: str) -> None:
    """Run a script's `main()`; an `ArscaleError` (a wrong folder, model or count) ends it in one line, `prog: ...`,
    as the CLI answers it, instead of a traceback."""
    try:
        main()
    except ArscaleError as exc:
        raise SystemExit(f"{prog}: {exc}") from None
