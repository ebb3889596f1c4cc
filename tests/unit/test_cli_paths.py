"""A path the user gave or configured that cannot be used is the documented error naming the path
and what is wrong with it, not "unexpected error … rerun with -v"."""
import io
import json

from edge import cli


def _run(argv, capsys, monkeypatch, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_a_home_that_cannot_be_created_is_named(capsys, monkeypatch):
    # /proc refuses new folders: EDGE_HOME there cannot exist
    code, out = _run(["--json", "--home", "/proc/self/nohome", "admin", "set-password", "--password-stdin"],
                     capsys, monkeypatch, "a-long-password\n")
    assert code == 1 and out["errno"] == -1007 and out["error"] == "FILE_NOT_EXIST"
    assert "/proc/self/nohome" in out["msg"] and "unexpected" not in out["msg"] and "-v" not in out["msg"]

