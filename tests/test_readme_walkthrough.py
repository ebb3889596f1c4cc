"""The README's "Using it" commands, in its order, as a newcomer types them (with the public
photos for alice.jpg and friends): each one succeeds. `edge user copy` to a group nobody had
created failed as the README showed it."""
import json
import zipfile

import pytest

from edge import cli
from tests.conftest import PUBLIC


@pytest.fixture
def edge(cfg, monkeypatch, capsys):
    monkeypatch.setenv("EDGE_HOME", str(cfg.home))
    monkeypatch.setenv("EDGE_MODELS_DIR", str(cfg.models_path))

    def run(*argv):
        code = cli.main(["--json", *map(str, argv)])
        out = json.loads(capsys.readouterr().out)
        assert code == 0, (argv, out)
        return out
    return run


def test_the_using_it_commands_work_as_written(edge, tmp_path):
    alice, visitor = PUBLIC / "obama/obama_1.jpg", PUBLIC / "obama/obama_2.jpg"
    face_zip = tmp_path / "Face.zip"
    with zipfile.ZipFile(face_zip, "w") as z:
        z.write(PUBLIC / "biden/biden_1.jpg", "bob-staff.jpg")
        z.write(PUBLIC / "rose_leslie/rose_leslie_1.jpg", "rose-staff.jpg")
    edge("user", "add", alice, "--user", "alice", "--group", "staff", "--info", "Alice, R&D")
    assert edge("identify", visitor, "--group", "staff")["user_id"] == "alice"
    assert edge("compare", alice, visitor)["match"] is True
    assert edge("detect", PUBLIC / "multi/two_people.jpg")["face_num"] == 2
    assert edge("import", face_zip, "--quiet")["summary"]["imported"] == 2
    assert edge("user", "list", "--group", "staff", "--start", 0, "--length", 100)["user_id_list"] == \
        ["alice", "bob", "rose"]
    edge("group", "add", "visitors")
    edge("user", "copy", "--user", "alice", "--src-group", "staff", "--dst-group", "visitors")
    assert edge("user", "get", "--user", "alice")["groups"] == ["staff", "visitors"]
    edge("user", "delete", "--user", "alice")
    assert edge("export", "-o", tmp_path / "templates.json")["exported"] == 2
    assert edge("import-templates", tmp_path / "templates.json")["already_present"] == 2
    assert edge("library", "check")["ok"] is True


def test_copy_to_a_group_nobody_created_says_how(edge, capsys):
    edge("user", "add", PUBLIC / "obama/obama_1.jpg", "--user", "alice", "--group", "staff")
    assert cli.main(["--json", "user", "copy", "--user", "alice", "--src-group", "staff", "--dst-group", "visitors"]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["errno"] == -1005 and err["error_code"] == 223111 and "edge group add visitors" in err["msg"]


def test_delete_with_an_empty_group_deletes_nothing(edge, capsys):
    # `edge user delete --user alice --group "$G"` with G unset deleted alice from every group
    edge("user", "add", PUBLIC / "obama/obama_1.jpg", "--user", "alice", "--group", "staff")
    assert cli.main(["--json", "user", "delete", "--user", "alice", "--group", ""]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["errno"] == -1002 and "group_id" in err["msg"]
    assert edge("user", "get", "--user", "alice")["groups"] == ["staff"]
