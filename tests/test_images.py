"""Bad and unusual images get a clear error or are handled."""
import cv2
import numpy as np
import pytest

from edge import errors as E
from edge import image as I
from tests.conftest import PUBLIC, photos


def _err(fn, code):
    with pytest.raises(E.EdgeError) as e:
        fn()
    assert e.value.code == code, e.value
    return e.value


def test_corrupt_truncated_empty_and_non_images(tmp_path):
    data = photos("obama")[0].read_bytes()
    e = _err(lambda: I.decode(data[: len(data) // 3]), E.IMAGE_TRANSFORM_FAILED)
    assert "truncated" in e.message
    png = (PUBLIC / "edge_cases" / "rgba_32bit.png").read_bytes()
    _err(lambda: I.decode(png[:-100]), E.IMAGE_TRANSFORM_FAILED)
    _err(lambda: I.decode(data[:200]), E.IMAGE_TRANSFORM_FAILED)
    _err(lambda: I.decode(b""), E.IMAGE_IS_EMPTY)
    _err(lambda: I.decode(b"%PDF-1.4 not an image"), E.UNSUPPORT_IMAGE_TYPE)
    garbled = bytearray(data)
    garbled[2000:6000] = b"\x00" * 4000
    I.decode(bytes(garbled))  # a damaged JPEG body still decodes (OpenCV conceals it) - no crash
    _err(lambda: I.load(tmp_path / "missing.jpg"), E.FILE_NOT_EXIST)


def test_huge_image_refused_from_header(tmp_path):
    big = np.zeros((8000, 6000, 3), np.uint8)  # 48 MP
    ok, png = cv2.imencode(".png", big)
    e = _err(lambda: I.decode(png.tobytes()), E.FILE_TOO_BIG)
    assert "40 MP" in e.message


def test_rgba_gray_and_16bit_are_recognised(engine):
    obama = I.load(photos("obama")[0])
    rgba = I.load(PUBLIC / "edge_cases" / "rgba_32bit.png")
    assert rgba.shape[2] == 3
    gray = cv2.cvtColor(obama, cv2.COLOR_BGR2GRAY)
    deep = obama.astype(np.uint16) * 257
    engine.user_add(obama, "obama", "g")
    for img in (rgba, gray, deep):
        r = engine.identify(img)
        assert r["user_id"] == "obama", r["user_list"]
