"""The JSON-error contract of both command lines, without models: every sub-command turns a bad
argument into {"errno", "error", "msg", "error_code"} with exit 1; anything unexpected is caught
at the top; output is always valid JSON; a closed pipe ends quietly (issue 8, item 9)."""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from edge import cli, cli_json as J
from edge import errors as E
from edge.license import cli as license_cli


def leaves(parser, prefix=()):
    """(argv prefix, parser) of every sub-command that takes no further sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, p in subs[0].choices.items():
        yield from leaves(p, prefix + (name,))


def run(main, argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_json_error(code, out, err, errno=E.PARARM_ERROR):
    doc = json.loads(out)
    assert code == 1, out
    assert {"errno", "error", "msg", "error_code"} <= set(doc), doc
    assert doc["errno"] == errno, doc
    assert "Traceback" not in err and "usage:" not in err
    return doc


def bad_values(action):
    """Values its type must refuse."""
    if action.type in (None, str):
        return []
    name = getattr(action.type, "__name__", "")
    if name == "integer":
        return ["abc", "-99999999999999999999999", "99999999999999999999999", "1.5"]
    if name == "number":
        return ["nan", "inf", "-inf", "abc", "1e999"]
    if name == "comma list":
        return ["1,x", "", "-1"]
    return []


@pytest.mark.parametrize("main,parser", [(cli.main, cli.build_parser()),
                                         (license_cli.main, license_cli.build_parser())])
def test_every_sub_command_turns_bad_arguments_into_the_json_error(main, parser, capsys, tmp_path):
    n_leaves = n_typed = 0
    for prefix, leaf in leaves(parser):
        n_leaves += 1
        base = ["--home", str(tmp_path)] if main is cli.main else ["--dir", str(tmp_path / "vendor")]
        # filler for required positionals, so the option under test is what fails
        positionals = [a.choices and sorted(a.choices)[0] or "x" for a in leaf._actions
                       if not a.option_strings and a.nargs not in ("?", "*") and a.dest != "help"]
        assert_json_error(*run(main, base + list(prefix) + positionals + ["--no-such-option"], capsys))
        for a in leaf._actions:
            for v in bad_values(a):
                n_typed += 1
                doc = assert_json_error(*run(main, base + list(prefix) + positionals + [a.option_strings[0], v],
                                             capsys))
                assert a.option_strings[0] in doc["msg"]
            if a.choices and not a.option_strings and not isinstance(a, argparse._SubParsersAction):
                args = [p if p != sorted(a.choices)[0] else "no-such-choice" for p in positionals]
                assert_json_error(*run(main, base + list(prefix) + args, capsys))
    assert n_leaves >= (20 if main is cli.main else 8) and n_typed >= 10
    # a missing sub-command or required argument is the same error, not usage text and exit 2
    assert_json_error(*run(main, [], capsys))


@pytest.mark.parametrize("argv,words", [
    (["user", "list", "--group", "g", "--start", "99999999999999999999"], "--start"),
    (["identify", "x.jpg", "--top-k", "-5"], "--top-k"),
    (["identify", "x.jpg", "--threshold", "nan"], "--threshold"),
    (["detect", "x.jpg", "--max-faces", "-1"], "--max-faces"),
    (["detect", "x.jpg", "--max-faces", "0"], "--max-faces"),
    (["user", "add", "x.jpg", "--user", "a"], "--group"),
])
def test_the_issue_s_cases_are_json_errors(argv, words, capsys, tmp_path):
    doc = assert_json_error(*run(cli.main, ["--json", "--home", str(tmp_path)] + argv, capsys))
    assert words in doc["msg"]


def test_edge_license_serve_on_a_bad_or_busy_port(tmp_path, capsys):
    import socket

    vdir = str(tmp_path / "v")
    assert license_cli.main(["--dir", vdir, "keygen"]) == 0
    capsys.readouterr()
    assert_json_error(*run(license_cli.main, ["--dir", vdir, "serve", "--port", "99999"], capsys))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        doc = assert_json_error(*run(license_cli.main, ["--dir", vdir, "serve", "--port",
                                                         str(s.getsockname()[1])], capsys), errno=E.NETWORK_ERROR)
    assert "--port" in doc["msg"]


def test_unexpected_exceptions_are_caught_at_the_top(tmp_path, capsys):
    """A damaged attendance database raised sqlite3.DatabaseError through the CLI."""
    db = tmp_path / "db" / "attendance.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    doc = assert_json_error(*run(cli.main, ["--json", "--home", str(tmp_path), "attendance", "export"], capsys),
                            errno=E.DB_OP_FAILED)
    assert "DatabaseError" in doc["msg"] and "-v" in doc["msg"]
    code, out, err = run(cli.main, ["--json", "-v", "--home", str(tmp_path), "attendance", "export"], capsys)
    assert code == 1 and json.loads(out)["errno"] == E.DB_OP_FAILED
    assert "Traceback" in err                                   # -v: the traceback, on stderr only
    # and anything at all, from any command
    code = J.run([], lambda: argparse.Namespace(json=True, verbose=False),
                 lambda a: {}["missing"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["errno"] == E.SYSTEM_ERROR and "KeyError" in doc["msg"]


def test_output_is_always_valid_json(capsys):
    out = {"a": math.nan, "b": [np.float32("inf"), np.float64(2.5)], "c": np.array([1.0, np.nan]),
           "d": {"e": -math.inf}}
    assert J.run([], lambda: argparse.Namespace(json=True, verbose=False), lambda a: out) == 0
    text = capsys.readouterr().out
    assert json.loads(text) == {"a": None, "b": [None, 2.5], "c": [1.0, None], "d": {"e": None}}
    assert "NaN" not in text and "Infinity" not in text


def test_licensing_off_status_exits_zero(tmp_path, capsys):
    code, out, _ = run(cli.main, ["--json", "--home", str(tmp_path), "license", "status"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["licensing"] == "off" and doc["activated"] is False


def test_a_closed_pipe_ends_quietly(tmp_path):
    for argv in (["--json", "attendance", "export"], ["--help"]):
        p = subprocess.Popen([sys.executable, "-m", "edge.cli", "--home", str(tmp_path), *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        p.stdout.close()                       # the reader is gone before the command writes
        err = p.stderr.read().decode()
        p.wait(60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert p.returncode in (0, 1)
