"""Bad and unusual inputs on the real photos (issue 8, "Done when" 2 and items 7-10): a corpus
of more than 50 broken or odd images made from a fixture photo goes through `edge detect`,
`compare`, `identify`, `user add` and `import` (the CLI's main() in-process) and every one
gets a result or the documented JSON error; every EXIF orientation enrols and identifies the
right person with boxes in the upright frame; the CLI cases of items 7-10."""
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter

from edge import errors as E
from edge import image as I
from edge.cli import main as edge_main
from tests.conftest import SHARED, photos
from tests.unit.test_inputs import TO_STORED

OBAMA = photos("obama")[0]


def with_exif(pil: Image.Image, o: int, fmt: str = "JPEG", **kw) -> bytes:
    """``pil`` (upright) stored the way a camera stores it for orientation ``o``."""
    s = pil.transpose(TO_STORED[o]) if TO_STORED[o] is not None else pil
    ex = Image.Exif()
    ex[0x0112] = o
    b = io.BytesIO()
    s.save(b, fmt, exif=ex.tobytes(), **kw)
    return b.getvalue()


def save(pil, fmt, **kw) -> bytes:
    b = io.BytesIO()
    pil.save(b, fmt, **kw)
    return b.getvalue()


def app1(jpg: bytes, body: bytes) -> bytes:
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 8) + b"Exif\x00\x00" + body + jpg[2:]


FACE, POOR, NONE, ANY = "face", "poor", "none", "any"


def corpus() -> list[tuple[str, bytes, object]]:
    """(name, bytes, expected): FACE = Obama is found and identified; POOR = found, but the
    enrolment policy refuses it; NONE = no face; ANY = a result or a documented error; an int =
    that errno from every command."""
    src = OBAMA.read_bytes()
    pil = Image.open(io.BytesIO(src)).convert("RGB")
    bgr = I.decode(src)
    small = pil.resize((455, 568))
    enc = lambda img, ext, *p: cv2.imencode(ext, img, list(p))[1].tobytes()
    out = [("original", src, FACE)]
    out += [(f"exif_{o}_jpeg", with_exif(small, o), FACE) for o in range(1, 9)]
    out += [("exif_6_png", with_exif(small, 6, "PNG"), FACE), ("exif_8_webp", with_exif(small, 8, "WEBP"), FACE),
            ("exif_3_progressive", with_exif(small, 3, progressive=True), FACE),
            ("exif_5_trailing", with_exif(small, 5) + b"\x00" * 4096, FACE)]
    out += [(f"truncated_{p}", src[: int(len(src) * p / 1000)], E.IMAGE_TRANSFORM_FAILED) for p in (100, 500, 900, 995)]
    out += [("trailing_zeros", src + b"\x00" * 10000, FACE), ("trailing_text", src + b"maker trailer " * 500, FACE),
            ("jpeg_twice", src + save(small, "JPEG"), FACE),
            ("polyglot_jpeg_zip", src + _zip_bytes({"a.txt": b"hello"}), FACE)]
    tiff = lambda body: app1(src, body)
    out += [("exif_empty", tiff(b""), FACE), ("exif_cut", tiff(b"II*\x00"), FACE),
            ("exif_ifd_far", tiff(b"II*\x00\xff\xff\xff\x7f"), FACE),
            ("exif_65535_entries", tiff(b"II*\x00\x08\x00\x00\x00\xff\xff"), FACE),
            ("exif_orientation_9", tiff(b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x09\x00\x00\x00"), FACE),
            ("exif_loop", tiff(b"II*\x00\x08\x00\x00\x00\x00\x00\x08\x00\x00\x00"), FACE),
            ("exif_length_lies", src[:2] + b"\xff\xe1\x00\x02Exif\x00\x00II" + src[2:], ANY)]
    out += [("one_pixel_jpeg", enc(bgr[:1, :1], ".jpg"), NONE), ("one_pixel_png", enc(bgr[:1, :1], ".png"), NONE),
            ("two_pixels_gray", enc(np.zeros((2, 2), np.uint8), ".png"), NONE),
            ("very_wide", enc(cv2.resize(bgr, (8000, 10)), ".png"), NONE)]
    j = bytearray(enc(bgr[:8, :8], ".jpg"))
    sof = j.find(b"\xff\xc0")
    j[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    p = bytearray(enc(bgr[:8, :8], ".png"))
    p[16:24] = struct.pack(">II", 100000, 100000)
    b = bytearray(enc(bgr[:8, :8], ".bmp"))
    b[18:26] = struct.pack("<ii", 30000, -30000)
    w = bytearray(save(Image.fromarray(np.zeros((8, 8, 3), np.uint8)), "WEBP", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"))
    w[24:30] = (16000 - 1).to_bytes(3, "little") * 2
    out += [("huge_jpeg_header", bytes(j), E.FILE_TOO_BIG), ("huge_png_header", bytes(p), E.FILE_TOO_BIG),
            ("huge_bmp_header", bytes(b), E.FILE_TOO_BIG), ("huge_webp_canvas", bytes(w), E.FILE_TOO_BIG)]
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    rgba = cv2.copyMakeBorder(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
    out += [("gray_jpeg", enc(gray, ".jpg"), FACE), ("gray_png", enc(gray, ".png"), FACE),
            ("color_16bit_png", enc(bgr.astype(np.uint16) * 257, ".png"), FACE),
            ("gray_16bit_png", enc(gray.astype(np.uint16) * 257, ".png"), FACE),
            ("rgba_transparent_border", enc(rgba, ".png"), FACE), ("gray_alpha_png", save(pil.convert("LA"), "PNG"), FACE),
            ("palette_png", save(pil.convert("P"), "PNG"), FACE), ("cmyk_jpeg", save(pil.convert("CMYK"), "JPEG"), FACE),
            ("progressive_jpeg", save(pil, "JPEG", progressive=True), FACE),
            ("restart_markers", enc(bgr, ".jpg", cv2.IMWRITE_JPEG_RST_INTERVAL, 4), FACE),
            ("bmp", enc(bgr, ".bmp"), FACE), ("tiff", enc(bgr, ".tiff"), FACE), ("webp_lossy", enc(bgr, ".webp"), FACE),
            ("float_tiff", enc((bgr / 255.0).astype(np.float32), ".tiff"), FACE),
            ("multipage_tiff", save(pil, "TIFF", save_all=True, append_images=[pil.rotate(90)]), FACE)]
    png = bytearray(enc(bgr, ".png"))
    idat = png.find(b"IDAT")
    crc_at = idat + 4 + int.from_bytes(png[idat - 4:idat], "big")
    bad_crc, bad_data = bytearray(png), bytearray(png)
    bad_crc[crc_at] ^= 0xFF
    bad_data[idat + 200] ^= 0xFF
    garbled = bytearray(src)
    garbled[len(src) // 2:len(src) // 2 + 3000] = b"\x00" * 3000
    out += [("png_bad_crc", bytes(bad_crc), E.IMAGE_TRANSFORM_FAILED),
            ("png_bad_deflate", bytes(bad_data), E.IMAGE_TRANSFORM_FAILED),
            ("png_truncated", bytes(png[: len(png) // 2]), E.IMAGE_TRANSFORM_FAILED),
            ("zero_bytes", b"", E.IMAGE_IS_EMPTY), ("text", b"user,group\nalice,staff\n", E.UNSUPPORT_IMAGE_TYPE),
            ("html", b"<html><body><img src=x></body></html>", E.UNSUPPORT_IMAGE_TYPE),
            ("pdf_polyglot", b"\xff\xd8\xff\xe0%PDF-1.4\n1 0 obj<<>>endobj\n", E.IMAGE_TRANSFORM_FAILED),
            ("zip_renamed", _zip_bytes({"obama-staff.jpg": src}), E.UNSUPPORT_IMAGE_TYPE),
            ("gif", save(pil.convert("P"), "GIF"), E.UNSUPPORT_IMAGE_TYPE),
            ("soi_eoi_only", b"\xff\xd8\xff\xd9", E.IMAGE_TRANSFORM_FAILED),
            ("garbled_middle", bytes(garbled), ANY)]
    out += [("black", enc(np.zeros((480, 640, 3), np.uint8), ".jpg"), NONE),
            ("white", enc(np.full((480, 640, 3), 255, np.uint8), ".png"), NONE),
            ("noise", enc(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), ".png"), ANY),
            ("dark", enc((bgr * 0.1).astype(np.uint8), ".jpg"), POOR),
            ("blurred", save(pil.filter(ImageFilter.GaussianBlur(14)), "JPEG"), POOR),
            ("tiny_face", enc(cv2.resize(bgr, (60, 75)), ".png"), ANY),
            ("sideways_untagged", enc(cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE), ".jpg"), ANY)]
    return out


def _zip_bytes(files: dict) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return b.getvalue()


@pytest.fixture
def cli(tmp_path, models_dir, monkeypatch, capsys):
    monkeypatch.setenv("EDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDGE_MODELS_DIR", str(models_dir))

    def run(*argv):
        code = edge_main(["--json", *map(str, argv)])
        out = capsys.readouterr()
        doc = json.loads(out.out)                  # one valid JSON object, whatever happened
        assert "Traceback" not in out.err, out.err
        if code:
            assert code == 1 and {"errno", "error", "msg", "error_code"} <= set(doc), doc
            assert doc["errno"] in E.CODES
        return code, doc
    return run


def test_bad_image_corpus_gets_a_result_or_the_json_error(cli, tmp_path, monkeypatch):
    import edge.cli

    # ~300 commands: one FaceEngine (its ONNX sessions take ~0.1 s to create) serves them all;
    # everything from argv to the printed JSON is the CLI's own path
    made = {}
    real = edge.cli._engine
    monkeypatch.setattr(edge.cli, "_engine", lambda args, open_library=True: made.get(args.config) or
                        made.setdefault(args.config, real(args)))
    cases = corpus()
    assert len(cases) >= 50
    d = tmp_path / "corpus"
    d.mkdir()
    for name, data, _ in cases:
        (d / f"{name}.img").write_bytes(data)
    assert cli("user", "add", photos("obama")[1], "--user", "obama", "--group", "ref")[0] == 0
    assert cli("user", "add", photos("biden")[0], "--user", "biden", "--group", "ref")[0] == 0
    outcomes = {}
    for name, _, want in cases:
        f = d / f"{name}.img"
        results = {"detect": cli("detect", f), "compare": cli("compare", f, photos("obama")[1]),
                   "identify": cli("identify", f, "--group", "ref")}
        for cmd, (code, doc) in results.items():
            if isinstance(want, int):
                assert code == 1 and doc["errno"] == want, (name, cmd, doc)
            elif want in (FACE, POOR):
                assert code == 0, (name, cmd, doc)
            elif want == NONE:
                assert (doc["face_num"] == 0) if cmd == "detect" else doc["errno"] == E.DETECT_NO_FACE, (name, cmd, doc)
        if want in (FACE, POOR):
            assert results["detect"][1]["face_num"] >= 1, name
        if want == FACE:
            assert results["compare"][1]["match"] is True, (name, results["compare"][1])
            assert results["identify"][1]["user_id"] == "obama", (name, results["identify"][1])
        outcomes[name] = results
    # enrolment: the same files, each as a new user
    for i, (name, _, want) in enumerate(cases):
        code, doc = cli("user", "add", d / f"{name}.img", "--user", f"u{i}", "--group", "corpus")
        if want == FACE:
            assert code == 0 and doc["face_token"], (name, doc)
        elif want == POOR:
            assert doc["errno"] == E.GET_FEATURE_FAIL and doc["reasons"] and doc["quality"], (name, doc)
        elif want == NONE:
            assert doc["errno"] == E.DETECT_NO_FACE, (name, doc)
        elif isinstance(want, int):
            assert doc["errno"] == want, (name, doc)
    # batch import of the whole corpus as a zip: every file in exactly one list, nothing stops it
    z = tmp_path / "Face.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (name, data, _) in enumerate(cases):
            zf.writestr(f"Face/c{i:02d}-corpus.jpg", data)
    code, rep = cli("import", z, "--quiet")
    assert code == 0, rep
    where = {e["file"]: k for k in ("imported", "no_face", "poor_quality", "bad_image", "duplicate", "bad_name")
             for e in rep[k]}
    assert len(where) == len(cases)
    for i, (name, _, want) in enumerate(cases):
        got = where[f"c{i:02d}-corpus.jpg"]
        expected = {FACE: "imported", POOR: "poor_quality", NONE: "no_face"}.get(want, "bad_image")
        assert want == ANY or got == expected, (name, got)


@pytest.mark.parametrize("o", range(1, 9))
def test_every_exif_orientation_enrols_and_identifies_upright(engine, tmp_path, o):
    obama = Image.open(OBAMA).convert("RGB")
    biden = Image.open(photos("biden")[0]).convert("RGB")
    upright = engine.detect(str(OBAMA))["face_list"][0]["location"]
    f = tmp_path / f"obama_{o}.jpg"
    f.write_bytes(with_exif(obama, o, quality=95))
    g = f"orient{o}"
    loc = engine.user_add(str(f), "obama", g)["location"]
    for k in ("left", "top", "width", "height"):           # the box is in the upright frame
        assert abs(loc[k] - upright[k]) < 0.05 * upright["width"], (o, loc, upright)
    engine.user_add(with_exif(biden, o), "biden", g)
    assert engine.identify(str(photos("obama")[1]), [g])["user_id"] == "obama"
    probe = Image.open(photos("biden")[1]).convert("RGB")
    r = engine.identify(with_exif(probe, o), [g])
    assert r["user_id"] == "biden" and abs(r["face"]["angle"]["roll"]) < 20, r


def test_spoof_samples_decode_upright(analyzer):
    """../shared/spoof/ JPEGs carry orientation 6; read sideways, the liveness model is fooled."""
    an = analyzer
    for f in sorted((SHARED / "spoof").glob("*.jpg")):
        data = f.read_bytes()
        img = I.decode(data)
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert img.shape[:2] == raw.shape[1::-1] and img.shape[0] > img.shape[1], f.name     # turned: portrait
        face = an.largest(img)
        assert abs(face.pose["roll"]) < 30, (f.name, face.pose)
        sideways = an.detect(raw)
        assert not sideways or abs(sideways[0].pose["roll"]) > 45


def test_enrolment_policy_is_one_for_user_add_update_and_import(cli, tmp_path):
    bgr = I.load(OBAMA)
    dark = tmp_path / "dark-staff.jpg"
    cv2.imwrite(str(dark), (bgr * 0.1).astype(np.uint8))
    code, doc = cli("user", "add", dark, "--user", "dark", "--group", "staff")
    assert doc["errno"] == E.GET_FEATURE_FAIL and doc["error_code"] == 223115
    assert doc["reasons"][0]["reason"] == "too_dark" and doc["quality"]["illumination"] < 40
    assert "illumination" in doc["msg"]
    assert cli("user", "add", OBAMA, "--user", "dark", "--group", "staff")[0] == 0
    assert cli("user", "update", dark, "--user", "dark", "--group", "staff")[1]["errno"] == E.GET_FEATURE_FAIL
    d = tmp_path / "batch"
    d.mkdir()
    shutil.copy(dark, d / "dark2-staff.jpg")
    rep = cli("import", d, "--quiet")[1]
    assert [e["file"] for e in rep["poor_quality"]] == ["dark2-staff.jpg"]
    assert rep["poor_quality"][0]["reason"] in doc["msg"]            # the same verdict, word for word
    conf = tmp_path / "lenient.toml"
    conf.write_text("[enrol]\nmin_illumination = 0\n")               # overridable in the config
    assert cli("--config", conf, "user", "add", dark, "--user", "dark3", "--group", "staff")[0] == 0


def test_template_files_through_the_cli(cli, tmp_path):
    cli("user", "add", OBAMA, "--user", "obama", "--group", "staff")
    exp = tmp_path / "t.json"
    assert cli("export", "-o", exp)[0] == 0
    doc = json.loads(exp.read_text())
    doc["faces"][0]["groups"] = ["staff", "night_shift"]
    exp.write_text(json.dumps(doc))
    cli("user", "delete", "--user", "obama")
    assert cli("import-templates", exp)[1] == {"imported": 1, "already_present": 0, "file": str(exp)}
    assert cli("import-templates", exp)[1]["imported"] == 0                      # twice: no duplicate
    assert cli("user", "get", "--user", "obama")[1]["groups"] == ["night_shift", "staff"]
    assert cli("count")[1] == {"users": 1, "faces": 1, "indexed": 1}
    assert cli("identify", photos("obama")[1], "--group", "night_shift")[1]["user_id"] == "obama"
    doc["faces"][0]["feature"] = doc["faces"][0]["feature"][:-8] + "AADAfw=="    # last value NaN
    doc["faces"][0]["face_token"] = "x" * 32
    exp.write_text(json.dumps(doc))
    assert cli("import-templates", exp)[1]["errno"] == E.FEATURE_LEN_ERROR
    for content in (b"\x00\x01binary", b"[]", b'{"faces": "x"}', b"{}"):
        exp.write_bytes(content)
        assert cli("import-templates", exp)[0] == 1
    assert cli("import-templates", tmp_path / "missing.json")[1]["errno"] == E.FILE_NOT_EXIST
    assert cli("count")[1]["faces"] == 1


def test_zip_with_a_bad_crc_member_imports_the_rest(cli, tmp_path):
    z = tmp_path / "Face.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.write(photos("obama")[0], "a_obama-staff.jpg")
        zf.write(photos("biden")[0], "b_biden-staff.jpg")
        zf.write(photos("rose_leslie")[0], "c_rose-staff.jpg")
    raw = bytearray(z.read_bytes())
    name = raw.find(b"b_biden-staff.jpg")
    raw[name + len("b_biden-staff.jpg") + 5000] ^= 0xFF          # a flipped bit inside biden's data
    z.write_bytes(raw)
    code, rep = cli("import", z, "--quiet")
    assert code == 0 and [e["user_id"] for e in rep["imported"]] == ["a_obama", "c_rose"]
    assert rep["bad_image"][0]["file"] == "b_biden-staff.jpg" and "damaged" in rep["bad_image"][0]["reason"]


def test_silent_mistakes_are_refused_or_reported(cli, tmp_path):
    cli("user", "add", OBAMA, "--user", "obama", "--group", "staff")
    cli("user", "add", photos("biden")[0], "--user", "biden", "--group", "visitors")
    assert cli("identify", photos("obama")[1], "--group", "nosuch")[1]["errno"] == E.RECORD_UNEXIST
    assert cli("count", "--group", "staff")[1] == {"group_id": "staff", "users": 1, "faces": 1}
    assert cli("count", "--group", "nosuch")[1]["errno"] == E.RECORD_UNEXIST
    assert cli("user", "add", OBAMA, "--user", "eve\n", "--group", "staff")[1]["errno"] == E.PARARM_ERROR
    frames = tmp_path / "frames"
    frames.mkdir()
    assert cli("run", "--source", frames, "--seconds", "1")[1]["errno"] == E.FILE_NOT_EXIST     # empty folder
    assert cli("run", "--source", tmp_path / "no-such-dir", "--seconds", "1")[1]["errno"] == E.FILE_NOT_EXIST
    assert cli("run", "--source", tmp_path / "clip.mp4", "--seconds", "1")[1]["errno"] == E.FILE_NOT_EXIST
    shutil.copy(OBAMA, frames / "f1.jpg")
    conf = tmp_path / "gate.toml"
    conf.write_text('[decision]\nmode = "gate"\ngroups = ["staff", "night_shift"]\n')
    doc = cli("--config", conf, "run", "--source", frames, "--seconds", "1")[1]
    assert doc["errno"] == E.RECORD_UNEXIST and "night_shift" in doc["msg"]
    # a fresh install (no groups at all yet) starts and waits for enrolments instead of
    # restarting under systemd until someone is enrolled
    code, doc = cli("--config", conf, "--home", tmp_path / "fresh", "run", "--source", frames, "--seconds", "1")
    assert code == 0 and doc["decisions"] == 0, doc


def test_a_camera_that_cannot_be_opened_says_why(cli, caplog):
    import logging

    caplog.set_level(logging.WARNING, logger="edge.sources")
    code, doc = cli("run", "--source", "/dev/video97", "--seconds", "1.5")
    assert code == 0 and doc["camera"] == "reconnecting" and "/dev/video97 does not exist" in doc["camera_error"]
    assert any("/dev/video97 does not exist" in r.getMessage() for r in caplog.records)


def test_library_full_names_the_license(tmp_path, models_dir, monkeypatch):
    import edge.license as L
    from edge import config as C
    from edge.engine import FaceEngine
    from tests.licensing import Vendor, device, keygen, serve_in_thread, Clock

    d = tmp_path / "vendor"
    keygen(d)
    v = Vendor(d / "vendor.db", d / "vendor.key", clock=Clock())
    srv = serve_in_thread(v)
    v.url, v.pub = f"http://127.0.0.1:{srv.server_address[1]}", d / "vendor.pub"
    try:
        dev = device(tmp_path, v)
        dev.activate_online(v.add_serials(1, {"max_users": 1})[0], v.url)
        monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(dev.root))
        eng = FaceEngine(C.load(home=dev.dir.parent, models_dir=models_dir))
        eng.user_add(str(OBAMA), "obama", "staff")
        with pytest.raises(E.EdgeError) as e:
            eng.user_add(str(photos("biden")[0]), "biden", "staff")
        assert e.value.code == E.DB_OP_FAILED and "license" in e.value.message and "allows 1" in e.value.message
        eng.close()
    finally:
        srv.shutdown()
        v.close()


def test_detect_into_a_closed_pipe_is_quiet(models_dir, tmp_path):
    env = dict(os.environ, EDGE_HOME=str(tmp_path), EDGE_MODELS_DIR=str(models_dir))
    p = subprocess.Popen([sys.executable, "-m", "edge.cli", "detect", str(OBAMA)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# one argument a user can get wrong, per documented sub-command, and the error it must give
MISSING = "/nonexistent/edge-test"
BAD_ARGUMENT = {
    "models build": (["--only", "nosuch"], E.PARARM_ERROR),
    "models list": (["--models-dir", MISSING], E.FILE_NOT_EXIST),
    "models register": (["yunet", MISSING + ".onnx", "--id", "x"], E.FILE_NOT_EXIST),
    "models fetch": (["nosuch"], E.PARARM_ERROR),
    "models import": ([MISSING], E.FILE_NOT_EXIST),
    "models catalogue": (["extra"], E.PARARM_ERROR),
    "models calibrate": (["dlib_resnet", MISSING], E.FILE_NOT_EXIST),
    "detect": ([MISSING + ".jpg"], E.FILE_NOT_EXIST),
    "compare": ([str(OBAMA), MISSING + ".jpg"], E.FILE_NOT_EXIST),
    "identify": ([str(OBAMA), "--group", "no such"], E.PARARM_ERROR),
    "user add": ([str(OBAMA), "--user", "bad-id", "--group", "g"], E.PARARM_ERROR),
    "user update": ([str(OBAMA), "--user", "nobody", "--group", "staff"], E.RECORD_UNEXIST),
    "user delete": (["--user", "nobody"], E.RECORD_UNEXIST),
    "user get": (["--user", "nobody"], E.RECORD_UNEXIST),
    "user copy": (["--user", "nobody", "--src-group", "staff", "--dst-group", "x"], E.RECORD_UNEXIST),
    "user list": (["--group", "nosuch"], E.RECORD_UNEXIST),
    "group add": (["bad id"], E.PARARM_ERROR),
    "group delete": (["nosuch"], E.RECORD_UNEXIST),
    "group list": (["--length", "5000"], E.PARARM_ERROR),
    "face-delete": (["--user", "obama", "--group", "staff", "--face-token", "nosuch"], E.FACE_RESOURCE_NOT_EXIST),
    "count": (["--group", "nosuch"], E.RECORD_UNEXIST),
    "import": ([MISSING], E.FILE_NOT_EXIST),
    "export": (["--group", "nosuch"], E.RECORD_UNEXIST),
    "import-templates": ([MISSING + ".json"], E.FILE_NOT_EXIST),
    "eval": ([MISSING], E.FILE_NOT_EXIST),
    "bench": (["recognition", "--images", MISSING], E.FILE_NOT_EXIST),
    "run": (["--source", MISSING], E.FILE_NOT_EXIST),
    "attendance export": (["--since", "yesterday"], E.PARARM_ERROR),
    "license fingerprint": (["extra"], E.PARARM_ERROR),
    "license status": (["extra"], E.PARARM_ERROR),
    "license activate": (["not-a-serial"], E.LICENSE_FILE_NOT_EXIST),      # licensing is off here
    "license request": (["not-a-serial"], E.LICENSE_FILE_NOT_EXIST),
    "license import": ([MISSING + ".json"], E.LICENSE_FILE_NOT_EXIST),
    "library check": (["extra"], E.PARARM_ERROR),
    "library reset": ([], E.PARARM_ERROR),            # a sound library is never reset
    "demo": (["--source", MISSING], E.FILE_NOT_EXIST),
    "serve": (["--port", "99999"], E.PARARM_ERROR),
    "admin set-password": (["--user", "bad user!"], E.PARARM_ERROR),
    "api key add": (["--qps", "-1"], E.PARARM_ERROR),
    "api key delete": (["nosuch"], E.RECORD_UNEXIST),
    "api key list": (["extra"], E.PARARM_ERROR),
    "doctor": (["--root", MISSING], E.FILE_NOT_EXIST),
    "models quantize": (["--images", MISSING], E.FILE_NOT_EXIST),
    "calibrate nir": (["--rgb", MISSING, "--nir", MISSING], E.FILE_NOT_EXIST),
}


def test_every_documented_sub_command_answers_a_bad_argument_with_the_json_error(cli):
    from edge.cli import build_parser
    from tests.unit.test_cli_contract import leaves

    names = {" ".join(p) for p, _ in leaves(build_parser())}
    assert names <= set(BAD_ARGUMENT), f"add a bad-argument case for {sorted(names - set(BAD_ARGUMENT))}"
    cli("user", "add", OBAMA, "--user", "obama", "--group", "staff")
    for name in sorted(names):
        argv, errno = BAD_ARGUMENT[name]
        code, doc = cli(*name.split(), *argv)
        assert code == 1 and doc["errno"] == errno, (name, doc)
