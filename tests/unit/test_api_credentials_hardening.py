"""The device service's credentials under a careless installer and an attacker: several
`edge api key add` at once, and a spray of wrong client ids at the token endpoint."""
import subprocess
import sys

import pytest

from edge import config as C
from edge.api.auth import KeyStore


@pytest.fixture
def cfg(tmp_path):
    return C.load(home=tmp_path / "home", models_dir=tmp_path / "no-models")


def test_keys_added_by_processes_at_once_are_all_kept(cfg):
    # before keys.json was changed under a file lock, 8 at once printed 8 keys and kept 1
    code = ("import sys; from edge.api.auth import KeyStore; "
            "print(KeyStore(sys.argv[1]).add(sys.argv[2])[0])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(cfg.home), f"k{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(8)]
    printed = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs) and len(printed) == 8
    assert {k.api_key for k in KeyStore(cfg.home).all()} == printed
