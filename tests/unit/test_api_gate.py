"""The device service's gate, credentials and admin login, without models or photos."""
import json
import re

import pytest
from fastapi.testclient import TestClient

from edge import config as C
from edge.api.app import create_app
from edge.api.auth import AdminAccount, KeyStore, Throttle, TokenError, Tokens, check_secret, hash_secret
from edge.api.limits import Limits

V3 = "/rest/2.0/face/v3"


@pytest.fixture
def cfg(tmp_path):
    return C.load(home=tmp_path / "home", models_dir=tmp_path / "no-models")


@pytest.fixture
def app(cfg):
    return create_app(cfg)


def token_for(client, ak, sk):
    r = client.get("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": ak,
                                               "client_secret": sk})
    assert r.status_code == 200, r.text
    return r.json()


def test_secrets_are_stored_as_scrypt_hashes_and_checked(cfg):
    h = hash_secret("correct horse battery")
    assert h.startswith("scrypt$16384$8$1$") and "correct" not in h
    assert check_secret("correct horse battery", h) and not check_secret("correct horse batterx", h)
    assert not check_secret("x", "sha256$abc") and not check_secret("x", "garbage")
    keys = KeyStore(cfg.home)
    ak, sk = keys.add("door")
    raw = keys.path.read_text()
    assert ak in raw and sk not in raw and (keys.path.stat().st_mode & 0o777) == 0o600
    assert keys.verify(ak, sk).api_key == ak and keys.verify(ak, sk + "x") is None and keys.verify("nope", sk) is None
    for bad in ({"qps": -5}, {"qps": 0}, {"daily_limit": -1}, {"secret": "short"}):
        with pytest.raises(Exception):
            keys.add("bad", **bad)
    env = KeyStore(cfg.home, {"EDGE_API_KEY": "envkey", "EDGE_SECRET_KEY": "env-secret-123"})
    assert env.verify("envkey", "env-secret-123") is not None and env.verify("envkey", "nope") is None


def test_tokens_expire_die_with_their_key_and_cannot_be_forged(cfg):
    now = [1_700_000_000.0]
    keys = KeyStore(cfg.home)
    ak, _ = keys.add()
    tokens = Tokens(cfg.home, keys, 3600, clock=lambda: now[0])
    tok, ttl = tokens.issue(keys.get(ak))
    assert ttl == 3600 and re.fullmatch(r"24\.[0-9a-f]{32}\.3600\.\d+\.[0-9a-f]{8}-[0-9a-f]{12}", tok)
    assert ak not in tok                                   # the token names the key by a digest
    assert tokens.check(tok).api_key == ak
    # a restart (new Tokens, same home) still accepts it: the device secret is on disk
    assert Tokens(cfg.home, keys, 3600, clock=lambda: now[0]).check(tok).api_key == ak
    now[0] += 3600
    with pytest.raises(TokenError) as e:
        tokens.check(tok)
    assert e.value.code == 111
    now[0] -= 3600
    parts = tok.split(".")
    for forged in (".".join(parts[:3] + [str(int(parts[3]) + 10**6)] + parts[4:]),   # expiry pushed out
                   "24." + "0" * 32 + "." + ".".join(parts[2:]), "", "24.x", "garbage.token"):
        with pytest.raises(TokenError) as e:
            tokens.check(forged)
        assert e.value.code == 110
    keys.delete(ak)
    with pytest.raises(TokenError) as e:
        tokens.check(tok)
    assert e.value.code == 110


def test_qps_and_daily_limits():
    t, day = [0.0], ["2026-01-01"]
    lim = Limits(clock=lambda: t[0], today=lambda: day[0])
    assert [lim.admit("k", 2) for _ in range(3)] == [0, 0, 18]
    t[0] += 0.5
    assert lim.admit("k", 2) == 0 and lim.admit("k", 2) == 18
    assert lim.admit("other", 2) == 0                       # per key
    t[0] += 10
    assert [lim.admit("d", 100, daily=2) for _ in range(3)] == [0, 0, 17]
    day[0] = "2026-01-02"
    assert lim.admit("d", 100, daily=2) == 0


def test_throttle_blocks_after_repeated_failures():
    t = [0.0]
    th = Throttle(limit=3, window=60, block=60, clock=lambda: t[0])
    for _ in range(3):
        assert not th.blocked("ip")
        th.failed("ip")
    assert th.blocked("ip") and not th.blocked("other")
    t[0] += 61
    assert not th.blocked("ip")


def test_token_endpoint_as_the_cloud(app, cfg):
    c = TestClient(app)
    ak, sk = KeyStore(cfg.home).add()
    for method in (c.get, c.post):
        r = method("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": ak,
                                               "client_secret": sk})
        d = r.json()
        assert r.status_code == 200 and d["expires_in"] == 2592000 and "brain_all_scope" in d["scope"].split()
    assert c.get("/oauth/2.0/token", params={"client_id": ak, "client_secret": sk}).json()["error"] == \
        "unsupported_grant_type"
    assert c.get("/oauth/2.0/token", params={"grant_type": "password", "client_id": ak,
                                             "client_secret": sk}).json()["error"] == "unsupported_grant_type"
    assert c.get("/oauth/2.0/token", params={"grant_type": "client_credentials",
                                             "client_id": ak}).json()["error"] == "invalid_request"
    r = c.get("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": ak, "client_secret": "no"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_every_v3_call_needs_a_valid_token_and_bodies_are_capped(app, cfg):
    c = TestClient(app)
    paths = [p for p in app.openapi()["paths"] if p.startswith(("/rest/", "/face-api/"))]
    assert len(paths) >= 48
    for p in paths:
        for params in ({}, {"access_token": "24.forged"}):
            d = c.post(p, params=params, json={}).json()
            assert d["error_code"] == 110 and d["error_msg"] == "Access token invalid or no longer valid"
            assert set(d) == {"error_code", "error_msg", "log_id", "timestamp", "cached", "result"}
    ak, sk = KeyStore(cfg.home).add()
    tok = token_for(c, ak, sk)["access_token"]
    big = b"{" + b" " * (10 * 2**20) + b"}"
    r = c.post(f"{V3}/detect", params={"access_token": tok}, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error_code"] == 222304
    # malformed bodies are the seed's "request body should be json format", never a 4xx page
    for body in (b"{not json", b"\xff\xfe\x00binary", b"[1, 2]", b'"a string"'):
        r = c.post(f"{V3}/faceset/group/add", params={"access_token": tok}, content=body,
                   headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["error_code"] == 222200, (body, r.text)
    # field errors carry the field's own code
    r = c.post(f"{V3}/faceset/group/getusers", params={"access_token": tok}, json={"group_id": "g", "length": 5000})
    assert r.json()["error_code"] == 222003
    r = c.post(f"{V3}/faceset/group/add", params={"access_token": tok}, json={"group_id": "bad id!"})
    assert r.json()["error_code"] == 222006
    r = c.post(f"{V3}/faceset/user/get", params={"access_token": tok}, json={"group_id": "g"})
    assert r.json()["error_code"] == 222001 and r.json()["error_msg"] == "param[user_id] is null"
    # an unknown path or method is the envelope's "unsupported openapi method"
    assert c.post("/rest/2.0/face/v3/nothing", params={"access_token": tok}, json={}).json()["error_code"] == 3
    assert c.get(f"{V3}/detect", params={"access_token": tok}).json()["error_code"] == 3


def test_openapi_describes_every_endpoint_with_schemas(app):
    spec = TestClient(app).get("/openapi.json").json()
    ops = [(p, m, op) for p, ms in spec["paths"].items() for m, op in ms.items()]
    v3 = [(p, op) for p, m, op in ops if p.startswith(("/rest/", "/face-api/"))]
    assert len(v3) >= 48
    for p, op in v3:
        assert "requestBody" in op or p.endswith("getlist") or p.endswith("group/list"), p
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok and "422" not in op["responses"], p
        assert op.get("security"), p
    names = set(spec["components"]["schemas"])
    assert {"DetectIn", "SearchIn", "UserAddIn", "DetectFace", "SearchUser", "Quality"} <= names


def test_admin_login_csrf_and_session_cookie(app, cfg):
    AdminAccount(cfg.home).set_password("kiosk-pass-1")
    c = TestClient(app, follow_redirects=False)
    assert c.get("/admin/").headers["location"] == "/admin/login"      # no session: to the login page
    page = c.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    # wrong password: refused, no session cookie
    r = c.post("/admin/login", data={"csrf": csrf, "username": "admin", "password": "wrong-pass"})
    assert r.status_code == 401 and "edge_session" not in r.cookies
    # the login form without its CSRF token: refused
    r = c.post("/admin/login", data={"username": "admin", "password": "kiosk-pass-1"})
    assert r.status_code == 403
    r = c.post("/admin/login", data={"csrf": csrf, "username": "admin", "password": "kiosk-pass-1"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/"
    cookie = r.headers["set-cookie"]
    assert "edge_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    # a form posted without the session's CSRF token is refused and changes nothing
    r = c.post("/admin/groups/add", data={"group_id": "staff"})
    assert r.status_code == 403
    r = c.post("/admin/groups/add", data={"group_id": "staff", "csrf": "forged"})
    assert r.status_code == 403
    # logout (with the token) ends the session
    lib_page = c.get("/admin/events")
    token = re.search(r'name="csrf" value="([^"]+)"', lib_page.text).group(1)
    assert c.post("/admin/logout", data={"csrf": token}).status_code == 303
    assert c.get("/admin/events").headers["location"] == "/admin/login"


def test_admin_password_rules_and_no_account(app, cfg):
    with pytest.raises(Exception):
        AdminAccount(cfg.home).set_password("short")
    c = TestClient(app)
    page = c.get("/admin/login")
    assert "edge admin set-password" in page.text                      # not configured yet: says how
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/admin/login", data={"csrf": csrf, "username": "admin", "password": "anything-at-all"})
    assert r.status_code == 401
    AdminAccount(cfg.home).set_password("kiosk-pass-1", "guard")
    stored = json.loads(AdminAccount(cfg.home).path.read_text())
    assert stored["user"] == "guard" and stored["hash"].startswith("scrypt$") and "kiosk" not in stored["hash"]
    assert AdminAccount(cfg.home).check("guard", "kiosk-pass-1") and not AdminAccount(cfg.home).check("admin", "kiosk-pass-1")


def test_edge_serve_command_serves_and_stops_on_sigterm(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from tests.helpers import free_port, wait_for

    home, port = tmp_path / "home", free_port()
    env = dict(os.environ, EDGE_HOME=str(home))
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "edge.cli", "--json", *a], env=env,  # noqa: E731
                                          capture_output=True, text=True, timeout=60, **kw)
    r = run("admin", "set-password", "--password-stdin", input="door-pass-123\n")
    assert r.returncode == 0 and json.loads(r.stdout)["hash"] == "scrypt"
    key = json.loads(run("api", "key", "add", "--name", "door", "--qps", "5").stdout)
    listed = json.loads(run("api", "key", "list").stdout)["keys"]
    assert [(k["api_key"], k["qps"]) for k in listed] == [(key["api_key"], 5.0)] and "secret" not in str(listed)
    bad = run("api", "key", "add", "--qps", "-1")
    assert bad.returncode == 1 and json.loads(bad.stdout)["errno"] == -1002
    srv = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--port", str(port)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/oauth/2.0/token?grant_type=client_credentials&client_id={key['api_key']}" \
              f"&client_secret={key['secret_key']}"

        def token():
            try:
                return json.loads(urllib.request.urlopen(url, timeout=2).read())
            except OSError:
                return None
        assert wait_for(lambda: token() is not None, 30)
        assert token()["expires_in"] == 2592000
        srv.send_signal(signal.SIGTERM)
        srv.wait(20)
    finally:
        if srv.poll() is None:
            srv.kill()
    assert b"Traceback" not in srv.stderr.read()
