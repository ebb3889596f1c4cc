"""A tiny JPEG claiming 20000x20000 pixels, with one fill byte (0xFF) before its frame header: the
header scan missed the size, and OpenCV decoded it at the size it claims: 2.4 GB and 3.6 s for a
625-byte file, before the 40 MP limit refused the result. Now it is refused from its header."""
import subprocess
import sys
import textwrap

import cv2
import numpy as np

BOMB = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))     # 1 GB of address space
    from edge import errors as E, image as I
    try:
        I.decode(open(sys.argv[1], "rb").read(), "bomb.jpg")
    except E.EdgeError as e:
        print(e.code, e.message)
""")


def _bomb(tmp_path, fill: bool):
    ok, buf = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))
    d = bytearray(buf.tobytes())
    i = d.find(b"\xff\xc0")
    d[i + 5:i + 9] = (20000).to_bytes(2, "big") * 2
    if fill:
        d[i:i] = b"\xff"
    f = tmp_path / ("fill.jpg" if fill else "plain.jpg")
    f.write_bytes(bytes(d))
    return f


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path):
    for fill in (False, True):
        f = _bomb(tmp_path, fill)
        assert f.stat().st_size < 1000
        out = subprocess.run([sys.executable, "-c", BOMB, str(f)], capture_output=True, text=True, timeout=120)
        assert out.stdout.startswith("-1009 ") and "20000x20000" in out.stdout, (fill, out.stdout, out.stderr[-500:])


def test_a_jpeg_without_a_frame_header_is_corrupt(tmp_path):
    from edge import errors as E
    from edge import image as I

    ok, buf = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))
    d = buf.tobytes()
    i = d.find(b"\xff\xc0")
    cut = d[:i] + d[i + 2 + int.from_bytes(d[i + 2:i + 4], "big"):]     # the SOF segment removed
    try:
        I.decode(cut, "nosof.jpg")
    except E.EdgeError as e:
        assert e.code == E.IMAGE_TRANSFORM_FAILED and "frame header" in e.message
    else:
        raise AssertionError("decoded a JPEG without a frame header")
