"""Errors that reach the user as one line and an exit code.

Everything the user can cause (bad paths, damaged media, unknown names) is raised as a
:class:`StreamfixError`; the CLI prints ``streamfix: error: <message>`` and exits with
:attr:`StreamfixError.exit_code`. Anything else is a bug and shows its traceback only with
``--debug``.
"""

from __future__ import annotations


class StreamfixError(Exception):
    """A failure the user can act on. ``exit_code`` 1 unless a subclass says otherwise."""

    exit_code = 1


class UsageError(StreamfixError):
    """Bad command-line usage: unknown engine/codec, out-of-range value, conflicting flags."""

    exit_code = 2


class InputError(StreamfixError):
    """The input cannot be read as media (missing, empty, not a video, no video stream)."""


class OutputError(StreamfixError):
    """The output cannot be written (missing folder, not writable, same path as input, exists)."""


class DamagedInputError(StreamfixError):
    """The input decoded only in part; the output holds what decoded."""


class Interrupted(StreamfixError):
    """The user pressed Ctrl-C; nothing was left at the output path."""

    exit_code = 130
