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


@pytest.fixture
def scrypt_calls(monkeypatch):
    """Counts the scrypt computations the service runs (the real ones), and the most at once."""
    import threading

    from edge.api import auth

    real, lock, seen = auth.hashlib.scrypt, threading.Lock(), {"calls": 0, "now": 0, "peak": 0}

    def counted(*a, **kw):
        with lock:
            seen["calls"] += 1
            seen["now"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
        try:
            return real(*a, **kw)
        finally:
            with lock:
                seen["now"] -= 1
    monkeypatch.setattr(auth.hashlib, "scrypt", counted)
    return seen


def _wrong(client, i):
    return client.post("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": f"made-up-{i}",
                                                   "client_secret": "guess"})


def test_a_spray_of_made_up_client_ids_from_one_address_is_throttled(cfg, scrypt_calls):
    from fastapi.testclient import TestClient

    from edge.api.app import create_app

    KeyStore(cfg.home).add("door")
    c = TestClient(create_app(cfg))
    scrypt_calls["calls"] = 0
    answers = [_wrong(c, i) for i in range(30)]
    assert all(r.status_code == 401 and r.json()["error"] == "invalid_client" for r in answers)
    # ten failures a minute from one address lock it out (README), whatever client id it names
    assert "too many failed attempts" in answers[-1].json()["error_description"]
    assert scrypt_calls["calls"] <= 11          # the ten failures (+ the one dummy hash); 60 before


def test_concurrent_secret_checks_run_one_at_a_time(cfg, scrypt_calls):
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from edge.api.app import create_app

    app = create_app(cfg)
    app.state.edge.token_throttle.limit = 10**6   # as if from many addresses
    with TestClient(app) as c, ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda i: _wrong(c, i), range(48)))
    assert {r.status_code for r in answers} <= {401, 429}
    assert all(r.json()["error"] == "invalid_client" for r in answers)
    assert scrypt_calls["peak"] == 1            # 16 MB each: bounded memory whatever the load
