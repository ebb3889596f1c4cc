"""What both command lines (`edge`, `edge-license`) share: every outcome is one JSON object on
stdout and an exit code (0 ok, 1 error), never a Python traceback.

- argparse's own errors (a missing argument, ``--top-k abc``) become the JSON error with exit 1,
  not usage text with exit 2;
- numbers are range-checked at parse time (``int_in``/``float_in``: NaN and inf are refused);
- anything unexpected is caught at the top: SYSTEM_ERROR (or DB_OP_FAILED for SQLite) with the
  message and a hint to rerun with ``-v``, which also prints the traceback to stderr;
- the output never holds a bare NaN (invalid JSON): non-finite numbers are written as null;
- a reader that goes away (``edge detect … | head``) ends the command quietly.
"""
from __future__ import annotations

import argparse
import errno as errno_
import json
import logging
import math
import os
import sqlite3
import sys
import traceback

from . import errors as E

log = logging.getLogger("edge.cli")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises the JSON error instead of printing usage and exiting with 2."""

    def error(self, message):
        raise E.EdgeError(E.PARARM_ERROR, f"{self.prog}: {message} (see `{self.prog} --help`)", http_code=222001)


def _number(convert, what: str, kind: str, lo, hi):
    def parse(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not {what}") from None
        if (isinstance(v, float) and not math.isfinite(v)) or not lo <= v <= hi:
            show = (lambda x: f"{x:g}") if convert is float else str
            raise argparse.ArgumentTypeError(f"{text[:40]} is outside {show(lo)}..{show(hi)}")
        return v
    parse.__name__ = kind      # argparse names the type in its messages; the tests find it by this
    return parse


def int_in(lo: int, hi: int):
    return _number(int, "a whole number", "integer", lo, hi)


def float_in(lo: float, hi: float):
    return _number(float, "a number", "number", lo, hi)


def int_list(lo: int, hi: int):
    """A comma list of whole numbers, checked and handed on as the same text ("1000,10000")."""
    one = int_in(lo, hi)

    def parse(text: str) -> str:
        return ",".join(str(one(t)) for t in text.split(","))
    parse.__name__ = "comma list"
    return parse


def finite(o):
    """``o`` with every NaN / infinity replaced by None (JSON has no NaN)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    if type(o).__module__ == "numpy" and hasattr(o, "tolist"):   # numpy scalars and arrays
        return finite(o.tolist())
    return o


def unexpected(exc: BaseException, verbose: bool) -> E.EdgeError:
    """The JSON error for an exception nobody anticipated."""
    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and exc.errno in (errno_.ENOSPC, errno_.EDQUOT, errno_.EFBIG):
        code, hint = E.DB_OP_FAILED, "the disk is full (or a quota or file size limit was reached): free space and retry"
    elif isinstance(exc, OSError) and exc.filename is not None:
        # a path the user gave (or configured) that cannot be used: say which and why, as the
        # documented error, not as something unexpected
        missing = exc.errno in (errno_.ENOENT, errno_.ENOTDIR)
        return E.EdgeError(E.FILE_NOT_EXIST if missing else E.SYSTEM_ERROR,
                           f"cannot use {exc.filename}: {exc.strerror or exc}: check the path"
                           + ("" if missing else " and its permissions"))
    elif isinstance(exc, sqlite3.Error):
        code, hint = E.DB_OP_FAILED, "the database failed"
    elif isinstance(exc, MemoryError):
        code, hint = E.SYSTEM_ERROR, "out of memory"
    else:
        code, hint = E.SYSTEM_ERROR, "unexpected error"
    tail = "" if verbose else "; rerun with -v to print the traceback"
    return E.EdgeError(code, f"{hint} ({what}){tail}")


def run(argv: list[str], parse, execute, indent: int | None = 2, default=None) -> int:
    """Parse ``argv`` with ``parse()``, run ``execute(args)``, print the JSON result; the exit code."""
    compact = "--json" in argv
    verbose = "-v" in argv or "--verbose" in argv
    try:
        args = parse()
        compact = getattr(args, "json", compact)
        verbose = getattr(args, "verbose", verbose)
        out, code = execute(args), 0
    except E.EdgeError as e:
        out, code = e.to_dict(), 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _quiet_exit()
    except SystemExit:
        # --help and --version: argparse wrote its text into stdout's buffer and exits; a reader
        # already gone makes the flush at exit fail ("Exception ignored ... BrokenPipeError",
        # printed by some Python versions), so flush here, where it can be quieted
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_exit()
        raise
    except Exception as e:  # the catch-all: a traceback is never the answer
        out, code = unexpected(e, verbose).to_dict(), 1
    try:
        text = _dumps(out, compact, indent, default)
    except (TypeError, ValueError) as e:
        out, code = unexpected(e, verbose).to_dict(), 1
        text = _dumps(out, compact, indent, default)
    try:
        # errors too: scripts parse one JSON object from stdout and check the exit code
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_exit()
    return code


def _dumps(out, compact: bool, indent, default) -> str:
    return json.dumps(finite(out), ensure_ascii=False, allow_nan=False, default=default,
                      indent=None if compact else indent)


def _quiet_exit() -> int:
    """The reader closed the pipe: stop without a traceback (and without another one when Python
    flushes stdout at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 1
