"""Exceptions shared by the compute layers, so one ``except`` catches them wherever raised."""


class Cancelled(Exception):
    """A user cancelled the job; raised between batches, and nothing is stored."""
