"""Exceptions shared by the compute layers, so one ``except`` catches them wherever raised,
and the wording their messages share."""

_MAX_LISTED = 10


class Cancelled(Exception):
    """A user cancelled the job; raised between batches, and nothing is stored."""


def stop_if_asked(should_stop) -> None:
    """Raise :class:`Cancelled` when ``should_stop()`` (a job's cancel flag; None: never) is
    true: what a long loop calls between its batches."""
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")


def listed(items) -> str:
    """The first 10 of ``items`` as text, comma-separated, then "and K more" for the rest."""
    items = list(items)
    shown = ", ".join(str(item) for item in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")
