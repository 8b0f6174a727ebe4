"""Errors the user must fix (bad config, missing model, unreachable endpoint).

Raise ``UserError`` anywhere; the ``soaes`` entry point prints its one-line message and exits 2
instead of showing a traceback. Bad *data* is never a UserError: it is counted and rejected.
"""


class UserError(Exception):
    exit_code = 2


class RunFailure(Exception):
    """A run that finished but must not count as success: verification failed, or it kept nothing.

    The ``soaes`` entry point prints the one-line reason and exits 1 (2 is for user errors).
    """

    exit_code = 1
