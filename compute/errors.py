"""Exceptions shared by the compute layers, so one ``except`` catches them wherever raised."""


class Cancelled(Exception):
    """A user cancelled the job; raised between batches, and nothing is stored."""


def stop_if_asked(should_stop) -> None:
    """Raise :class:`Cancelled` when ``should_stop()`` (a job's cancel flag; None: never) is
    true: what a long loop calls between its batches."""
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")
