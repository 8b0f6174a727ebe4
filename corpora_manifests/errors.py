"""Errors the user must fix (bad config, missing model, unreachable endpoint).

Raise ``UserError`` anywhere; the ``soaes`` entry point prints its one-line message and exits 2
instead of showing a traceback. Bad *data* is never a UserError: it is counted and rejected.
"""


class UserError(Exception):
    exit_code = 2
