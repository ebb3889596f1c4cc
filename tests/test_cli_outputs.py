"""Files the CLI writes on request (template backups) are whole or absent, and a path that cannot
be used is the documented error naming it."""
import json
import os
import resource
import signal
import subprocess
import sys

from tests.conftest import PUBLIC


def _edge(cfg, *args, limit=None):
    def preexec():
        if limit:           # a disk that fills up mid-write: writes past `limit` bytes fail
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(cfg.models_path))
    r = subprocess.run([sys.executable, "-m", "edge.cli", "--json", *args], env=env, capture_output=True, text=True,
                       preexec_fn=preexec, timeout=300)
    return r.returncode, json.loads(r.stdout)


def test_export_is_whole_or_absent_and_a_bad_path_is_named(engine, cfg, tmp_path):
    for who in ("obama", "biden", "kit_harington"):
        engine.user_add(str(sorted((PUBLIC / who).iterdir())[0]), who, "staff")
    out = tmp_path / "backup.json"
    # before: a full disk left a truncated backup.json (JSON cut at 8 KB) beside the error
    code, err = _edge(cfg, "export", "-o", str(out), limit=2500)
    assert code == 1 and err["errno"] == -1003 and "disk is full" in err["msg"]
    assert not out.exists() and not list(tmp_path.glob(".backup.json*"))
    code, err = _edge(cfg, "export", "-o", str(tmp_path / "nosuch" / "backup.json"))
    assert code == 1 and err["errno"] == -1007 and "nosuch" in err["msg"] and "unexpected" not in err["msg"]
    code, ok = _edge(cfg, "export", "-o", str(out))
    assert code == 0 and ok["exported"] == 3 and len(json.loads(out.read_text())["faces"]) == 3
    assert out.stat().st_mode & 0o777 == 0o600          # templates in clear: owner-only
