"""Errors a user can cause and fix: the CLI prints their message on one line, exit 2."""


class TapedeckError(Exception):
    """Base class for errors whose message is meant for the user."""
