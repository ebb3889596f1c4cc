"""Bad input without models or photos: EXIF orientation and image structure, template files,
the config, the zip reader and the library's template import (issue 8, items 7-9)."""
import base64
import io
import json
import struct
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from edge import batch_import
from edge import config as C
from edge import errors as E
from edge import image as I
from edge import template_file as T
from edge.exif import orientation
from edge.library import check_id

# the stored image S whose EXIF-transposed view is the upright one, for each orientation
TO_STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
             7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def err(fn, code):
    with pytest.raises(E.EdgeError) as e:
        fn()
    assert e.value.code == code, e.value
    return e.value


def upright_rgb():
    """An asymmetric picture: any wrong turn or flip shows."""
    y, x = np.mgrid[0:60, 0:90]
    img = np.stack([x * 2.8, y * 4.2, (x + y) % 50 * 5], -1).astype(np.uint8)
    img[5:15, 5:25] = (255, 0, 0)
    return Image.fromarray(img)


def stored(o: int, fmt: str, **kw) -> bytes:
    up = upright_rgb()
    s = up.transpose(TO_STORED[o]) if TO_STORED[o] is not None else up   # FLIP_LEFT_RIGHT is 0
    ex = Image.Exif()
    ex[0x0112] = o
    b = io.BytesIO()
    s.save(b, fmt, exif=ex.tobytes(), **kw)
    return b.getvalue()


@pytest.mark.parametrize("fmt,kw", [("JPEG", {"quality": 100, "subsampling": 0}), ("PNG", {}), ("WEBP", {"lossless": True})])
@pytest.mark.parametrize("o", range(1, 9))
def test_every_exif_orientation_decodes_upright_as_pillow_turns_it(o, fmt, kw):
    data = stored(o, fmt, **kw)
    assert orientation(data) == o
    got = I.decode(data)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))[:, :, ::-1]
    up = np.asarray(upright_rgb())[:, :, ::-1]
    assert got.shape == up.shape == ref.shape
    assert np.abs(got.astype(int) - ref).mean() < 0.5
    assert np.abs(got.astype(int) - up).mean() < 3          # JPEG loss only


def _jpeg_with_app1(body: bytes) -> bytes:
    ok, jpg = cv2.imencode(".jpg", np.asarray(upright_rgb())[:, :, ::-1])
    jpg = jpg.tobytes()
    seg = b"\xff\xe1" + struct.pack(">H", len(body) + 8) + b"Exif\x00\x00" + body
    return jpg[:2] + seg + jpg[2:]


@pytest.mark.parametrize("body", [
    b"",                                                        # empty EXIF
    b"II*\x00",                                                 # header cut short
    b"II*\x00\xff\xff\xff\x7f",                                 # IFD offset far beyond the end
    b"II*\x00\x08\x00\x00\x00\xff\xff",                         # 65535 entries, none present
    b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x09\x00\x00\x00",   # orientation 9
    b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x04\x00\x01\x00\x00\x00\x06\x00\x00\x00",   # LONG, not SHORT
    b"II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x02\x00\x00\x00\x06\x00\x00\x00",   # count 2
    b"MM\x00+\x00\x00\x00\x08",                                 # not TIFF magic 42
])
def test_forged_exif_is_ignored_not_fatal(body):
    data = _jpeg_with_app1(body)
    assert orientation(data) == 1
    assert I.decode(data).shape == (60, 90, 3)


def test_big_endian_exif_is_read():
    body = b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"
    assert orientation(_jpeg_with_app1(body)) == 6
    assert I.decode(_jpeg_with_app1(body)).shape == (90, 60, 3)


def test_trailing_bytes_are_accepted_truncation_is_not():
    for fmt in ("JPEG", "PNG"):
        data = stored(1, fmt)
        for tail in (b"\x00" * 10000, b"camera maker trailer " * 300, data):
            assert I.decode(data + tail).shape == (60, 90, 3)
        for cut in (len(data) // 3, len(data) - 20, len(data) - 13):      # PNG: before IEND
            err(lambda: I.decode(data[:cut] + b"\x00" * 5000), E.IMAGE_TRANSFORM_FAILED)
    # an EXIF thumbnail's own end marker early in the file does not make a cut-off file whole
    thumb = stored(1, "JPEG")
    full = _jpeg_with_app1(b"II*\x00\x08\x00\x00\x00\x00\x00" + thumb)
    assert I.decode(full).shape == (60, 90, 3)
    err(lambda: I.decode(full[: len(full) - 300]), E.IMAGE_TRANSFORM_FAILED)


def test_progressive_and_restart_marker_jpegs_are_complete():
    b = io.BytesIO()
    upright_rgb().save(b, "JPEG", progressive=True)
    assert I.decode(b.getvalue()).shape == (60, 90, 3)
    ok, rst = cv2.imencode(".jpg", np.asarray(upright_rgb()), [cv2.IMWRITE_JPEG_RST_INTERVAL, 1])
    assert I.decode(rst.tobytes()).shape == (60, 90, 3)


@pytest.mark.parametrize("ext", [".bmp", ".webp", ".tiff", ".png", ".jpg"])
def test_huge_headers_are_refused_before_decoding(ext):
    ok, b = cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))
    b = bytearray(b.tobytes())
    w, h = I._header_size(bytes(b))
    assert (w, h) == (8, 8)
    # declare 16000 x 16000 (256 MP: under OpenCV's own 1 GP limit, over ours; WebP's maximum is 16383)
    n = 16000
    big = bytes(b).replace(struct.pack(">HH", 8, 8), struct.pack(">HH", n, n), 1) if ext == ".jpg" else None
    if ext == ".png":
        big = bytes(b[:16] + struct.pack(">II", n, n) + b[24:])
    elif ext == ".bmp":
        big = bytes(b[:18] + struct.pack("<ii", n, n) + b[26:])
    elif ext == ".webp":
        bits = (n - 1) | (n - 1 << 14)
        big = bytes(b[:21] + struct.pack("<I", bits | (int.from_bytes(b[21:25], "little") & ~((1 << 28) - 1))) + b[25:])
    elif ext == ".tiff":
        big = bytes(b).replace(struct.pack("<HHIH", 256, 3, 1, 8), struct.pack("<HHIH", 256, 3, 1, n)) \
            .replace(struct.pack("<HHIH", 257, 3, 1, 8), struct.pack("<HHIH", 257, 3, 1, n))
    assert I._header_size(big) == (n, n), ext
    assert "40 MP" in err(lambda: I.decode(big), E.FILE_TOO_BIG).message


# ---- template files ------------------------------------------------------------------------------
DIM, MODEL = 8, "toy@1"


def feat(v) -> str:
    return base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()


def face(uid="alice", groups=("staff",), token=None, v=None, **kw):
    d = {"user_id": uid, "groups": groups if isinstance(groups, str) else list(groups), "user_info": "", "model": MODEL,
         "feature": feat(np.arange(1, DIM + 1) if v is None else v)}
    if token:
        d["face_token"] = token
    return d | kw


@pytest.mark.parametrize("doc,code,words", [
    ([face()], E.PARARM_ERROR, "top level is a list"),
    ({"model": MODEL}, E.PARARM_ERROR, 'no "faces"'),
    ({"faces": "alice"}, E.PARARM_ERROR, "must be a list"),
    ({"faces": [7]}, E.PARARM_ERROR, "must be an object"),
    ({"faces": [{"feature": feat(np.ones(DIM))}]}, E.PARARM_ERROR, 'no "user_id"'),
    ({"faces": [face(feature="@@@@")]}, E.FEATURE_LEN_ERROR, "base64"),
    ({"faces": [face(feature="QUJ")]}, E.FEATURE_LEN_ERROR, "base64"),            # odd length
    ({"faces": [face(feature=12345)]}, E.FEATURE_LEN_ERROR, "base64 string"),
    ({"faces": [face(v=np.ones(DIM + 1))]}, E.FEATURE_LEN_ERROR, "expected 32"),
    ({"faces": [face(v=[np.nan] + [1] * (DIM - 1))]}, E.FEATURE_LEN_ERROR, "NaN"),
    ({"faces": [face(v=[np.inf] + [1] * (DIM - 1))]}, E.FEATURE_LEN_ERROR, "NaN or infinite"),
    ({"faces": [face(v=np.zeros(DIM))]}, E.FEATURE_LEN_ERROR, "magnitude"),
    ({"faces": [face(v=np.full(DIM, 3e38))]}, E.FEATURE_LEN_ERROR, "magnitude"),
    ({"faces": [face(groups="staff")]}, E.PARARM_ERROR, "must be a non-empty list"),
    ({"faces": [face(groups=[])]}, E.PARARM_ERROR, "must be a non-empty list"),
    ({"faces": [face(groups=["ok", "bad-group"])]}, E.PARARM_ERROR, "bad-group"),
    ({"faces": [face(uid="eve\n")]}, E.PARARM_ERROR, "illegal"),
    ({"faces": [face(user_info=5)]}, E.PARARM_ERROR, "user_info"),
    ({"faces": [face(model="other@2")]}, E.FEATURE_LEN_ERROR, "cannot be mixed"),
    ({"faces": [face(token="t1"), face("bob", token="t1")]}, E.PARARM_ERROR, "appears twice"),
])
def test_malformed_template_documents_are_refused(doc, code, words):
    e = err(lambda: T.entries(doc, DIM, MODEL), code)
    assert words in e.message and e.to_dict()["error_code"]


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00binary", b"\xff\xfe\x00n\x00o\x00t",
                                     b"not json at all", b'{"faces": [NaN]}', b"[" * 100000])
def test_unreadable_template_files_are_json_errors(tmp_path, content):
    p = tmp_path / "t.json"
    p.write_bytes(content)
    err(lambda: T.read(p), E.PARARM_ERROR)
    err(lambda: T.read(tmp_path / "missing.json"), E.FILE_NOT_EXIST)


def test_template_import_is_all_or_none_with_every_group_and_idempotent(lib):
    rng = np.random.default_rng(1)
    good = [face("alice", ["staff", "visitors"], "tok_a", rng.standard_normal(DIM)),
            face("bob", ["staff"], "tok_b", rng.standard_normal(DIM))]
    # the second entry is bad: nothing at all is imported (before: alice stayed in)
    err(lambda: lib.import_templates(good + [face("carol", v=np.zeros(DIM))]), E.FEATURE_LEN_ERROR)
    assert lib.count() == {"users": 0, "faces": 0, "indexed": 0}
    assert lib.import_templates(good) == 2
    assert lib.get_user("alice")["groups"] == ["staff", "visitors"]            # not s, t, a, f, f
    assert sorted(lib.group_list()) == ["staff", "visitors"]
    assert [f["face_token"] for f in lib.get_user("alice")["face_list"]] == ["tok_a"]
    assert lib.import_templates(good) == 0                                    # same file twice: no duplicates
    assert lib.count()["faces"] == 2 and lib.index.ntotal == 2
    # a token that belongs to another user refuses the whole file
    e = err(lambda: lib.import_templates([face("mallory", token="tok_a")]), E.RECORD_ALREADY_EXIST)
    assert "alice" in e.message and lib.count()["users"] == 2
    # a string given as groups is refused, not spelled out into groups
    err(lambda: lib.import_templates([face("dave", groups="staff")]), E.PARARM_ERROR)
    assert sorted(lib.group_list()) == ["staff", "visitors"]


def test_ids_with_a_trailing_newline_are_refused():
    for bad in ("alice\n", "alice\r\n", "\nalice", "al ice", "", "a" * 129):
        err(lambda: check_id("user_id", bad), E.PARARM_ERROR)
    assert check_id("user_id", "a" * 128)
    assert batch_import.parse_name("alice\n-staff.jpg") is None


# ---- zip import reader ---------------------------------------------------------------------------
def test_zip_members_are_streamed_with_a_cap_and_bad_crc_is_per_file(tmp_path, monkeypatch):
    jpg = stored(1, "JPEG")
    z = tmp_path / "Face.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a-staff.jpg", jpg)
        zf.writestr("b-staff.jpg", jpg)
        zf.writestr("c-staff.jpg", b"\x00" * 300_000)           # compresses to a few hundred bytes
    raw = bytearray(z.read_bytes())
    # b's CRC in the central directory (which zipfile checks against) no longer matches its data
    central = raw.find(b"b-staff.jpg", raw.find(b"b-staff.jpg") + 1) - 46
    assert raw[central:central + 4] == b"PK\x01\x02"
    raw[central + 16] ^= 0xFF
    z.write_bytes(raw)
    entries = dict(batch_import._entries(z))
    assert entries["a-staff.jpg"]() == jpg
    assert "damaged" in err(entries["b-staff.jpg"], E.IMAGE_TRANSFORM_FAILED).message
    monkeypatch.setattr(I, "MAX_FILE_BYTES", 100_000)
    # declared too big: refused without reading; and one whose header lies is cut off at the cap
    err(entries["c-staff.jpg"], E.FILE_TOO_BIG)
    zf = zipfile.ZipFile(z)
    info = zf.getinfo("c-staff.jpg")
    info.file_size = 1000                                       # a forged, small declared size
    e = err(lambda: batch_import._read_member(zf, info), E.IMAGE_TRANSFORM_FAILED)
    assert "damaged" in e.message
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw).replace(b"PK\x01\x02", b"PK\x01\x09", 1))     # a damaged central directory
    err(lambda: list(batch_import._entries(bad)), E.IMAGE_TRANSFORM_FAILED)
    err(lambda: list(batch_import._entries(tmp_path / "nope")), E.FILE_NOT_EXIST)


# ---- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("content,words", [
    (b"\x00\x01\x02\xff\xfe binary", "UTF-8"),
    ("threads = 1\n# caf\xe9\n".encode("latin-1"), "UTF-8"),
    (b"home = 5\n", "must be a directory path"),
    (b'models_dir = ["a"]\n', "must be a directory path"),
    (b'[license]\nroot = "/tmp/other-device"\n', "license.root is no longer accepted"),
    (b'[license]\npublic_key = "/tmp/mine.pub"\n', "license.public_key is no longer accepted"),
    (b"[recognition]\nthreshold = nan\n", "recognition.threshold"),
    (b"[enrol]\nmax_blur = 2.0\n", "enrol.max_blur"),
])
def test_bad_configs_are_json_errors(tmp_path, content, words):
    p = tmp_path / "c.toml"
    p.write_bytes(content)
    assert words in err(lambda: C.load(p), E.PARARM_ERROR).message
