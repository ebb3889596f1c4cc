"""The admin page answers a request it cannot read with a page saying so (HTTP 400), never with
the v3 API's JSON envelope."""
import re

from fastapi.testclient import TestClient

from edge import config as C
from edge.api.app import create_app
from edge.api.auth import AdminAccount


def test_an_unreadable_form_or_query_is_an_admin_page(tmp_path):
    cfg = C.load(home=tmp_path / "home", models_dir=tmp_path / "no-models")
    AdminAccount(cfg.home).set_password("kiosk-pass-1")
    c = TestClient(create_app(cfg), follow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/login").text).group(1)
    assert c.post("/admin/login", data={"csrf": csrf, "username": "admin", "password": "kiosk-pass-1"}).status_code == 303
    # over Starlette's 1,000 parts: it refuses to parse the form (before: HTTP 200 {"error_code": 222200, ...})
    files = [(f"f{i}", ("a.txt", b"x", "text/plain")) for i in range(1100)]
    r = c.post("/admin/groups/add", data={"group_id": "g"}, files=files)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "could not be read" in r.text and "error_code" not in r.text
    r = c.get("/admin/library", params={"start": "abc"})          # before: a bare JSON {"error": "invalid form"}
    assert r.status_code == 400 and "could not be read" in r.text
