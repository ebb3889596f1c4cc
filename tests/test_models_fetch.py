"""`edge models fetch` against a loopback HTTP server serving the real files in ../shared/models,
and `edge models import` from a folder: a published file installs and runs; a wrong checksum, a
404, a cut connection and a silent server each give a clear error and leave no file behind."""
import hashlib
import http.server
import json
import shutil
import socket
import threading
import time

import pytest

from edge import config as C
from edge import errors as E
from edge.models import catalogue, fetch
from tests.conftest import PUBLIC, SHARED

YUNET = catalogue.CATALOGUE["yunet"]["files"][0]


def _published():
    """The catalogue's file names -> bytes, found in ../shared/models by their pinned sha256."""
    by_hash = {hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes()
               for p in (SHARED / "models").iterdir() if p.is_file()}
    return {s["name"]: by_hash[s["sha256"]] for e in catalogue.CATALOGUE.values() for s in e["files"]
            if s["sha256"] in by_hash}


class Mirror(http.server.BaseHTTPRequestHandler):
    """/ok/NAME serves the file; /bad/ one flipped byte; /cut/ half of it then closes; anything
    else 404; /slow/ never answers."""
    files: dict = {}

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        data = self.files.get(name)
        if mode == "slow":
            time.sleep(3)
            return
        if data is None or mode not in ("ok", "bad", "cut"):
            self.send_error(404)
            return
        if mode == "bad":
            data = data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if mode == "cut" else data)
        if mode == "cut":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def mirror():
    Mirror.files = _published()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _leftovers(models_dir):
    return sorted(p.name for p in models_dir.rglob("*") if p.is_file())


def _err(fn, code):
    with pytest.raises(E.EdgeError) as e:
        fn()
    assert e.value.code == code, e.value
    return e.value


def test_fetch_installs_a_working_detector(tmp_path, mirror, models_dir):
    md = tmp_path / "models"
    shutil.copytree(models_dir, md)
    cards = fetch.fetch("yunet", md, mirror=f"{mirror}/ok", quiet=True)
    assert [c["id"] for c in cards] == ["yunet"] and cards[0]["source"]["sha256"] == YUNET["sha256"]
    cfg = C.load(home=tmp_path / "home", models_dir=md)
    cfg.detect.detector = "yunet"
    from edge.faces import FaceAnalyzer
    from edge import image as I
    faces = FaceAnalyzer(cfg).detect(I.load(PUBLIC / "multi" / "two_people.jpg"))
    assert len(faces) == 2
    # a second fetch reuses the verified cache (the mirror is not asked again)
    assert fetch.fetch("yunet", md, mirror=f"{mirror}/nothing-here", quiet=True)[0]["id"] == "yunet"


@pytest.mark.parametrize("mode,code,words", [("bad", E.MODEL_IS_EMPTY, "sha256"),
                                             ("missing", E.NETWORK_ERROR, "HTTP 404"),
                                             ("cut", E.NETWORK_ERROR, "cut")])
def test_bad_downloads_leave_nothing(tmp_path, mirror, mode, code, words):
    md = tmp_path / "models"
    e = _err(lambda: fetch.fetch("yunet", md, mirror=f"{mirror}/{mode}", quiet=True), code)
    assert words in e.message, e.message
    assert _leftovers(md) == []


def test_a_silent_server_times_out(tmp_path, mirror):
    md = tmp_path / "models"
    e = _err(lambda: fetch.fetch("yunet", md, mirror=f"{mirror}/slow", timeout=0.5, quiet=True), E.NETWORK_TIMEOUT)
    assert "edge models import" in e.message and _leftovers(md) == []


def test_import_from_a_folder_by_checksum(tmp_path, capsys):
    from edge.cli import main

    md = tmp_path / "models"
    # ../shared/models names the file differently from its publisher: it is recognised by sha256
    assert main(["--json", "models", "import", str(SHARED / "models"), "yunet", "--models-dir", str(md)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["installed"][0]["id"] == "yunet" and (md / "yunet.onnx").is_file()
    # a file that carries the published name but other bytes is refused, by name
    usb = tmp_path / "usb"
    usb.mkdir()
    data = bytearray((SHARED / "models" / "face_detection_yunet_2023mar.onnx").read_bytes())
    data[500] ^= 0xFF
    (usb / YUNET["name"]).write_bytes(bytes(data))
    assert main(["--json", "models", "import", str(usb), "yunet", "--models-dir", str(tmp_path / "m2")]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["errno"] == E.MODEL_IS_EMPTY and "sha256" in err["msg"]
    assert main(["--json", "models", "import", str(tmp_path / "nope"), "--models-dir", str(md)]) == 1
    assert json.loads(capsys.readouterr().out)["errno"] == E.FILE_NOT_EXIST
