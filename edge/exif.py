"""The EXIF orientation tag (0x0112) of a JPEG, PNG or WebP file, read without decoding.

Phones store a photo taken upright in the sensor's pixel order and record how to turn it in
this tag; OpenCV's ``IMREAD_UNCHANGED`` ignores it. A small parser here avoids a runtime
dependency on Pillow. Every offset is bounds-checked: a forged or damaged EXIF block gives 1
(as stored), never an exception.
"""
from __future__ import annotations

ORIENTATION_TAG = 0x0112
MAX_IFD_ENTRIES = 1024


def _tiff_orientation(t: bytes) -> int:
    """Orientation from a TIFF structure (the body of an EXIF block): IFD0 only."""
    if len(t) < 8 or t[:2] not in (b"II", b"MM"):
        return 1
    order = "little" if t[:2] == b"II" else "big"
    u16 = lambda o: int.from_bytes(t[o:o + 2], order)
    u32 = lambda o: int.from_bytes(t[o:o + 4], order)
    if u16(2) != 42:
        return 1
    ifd = u32(4)
    if ifd + 2 > len(t):
        return 1
    n = min(u16(ifd), MAX_IFD_ENTRIES)
    for k in range(n):
        e = ifd + 2 + 12 * k
        if e + 12 > len(t):
            break
        if u16(e) == ORIENTATION_TAG:
            # type SHORT (3), count 1: the value sits in the first two bytes of the value field
            if u16(e + 2) != 3 or u32(e + 4) != 1:
                return 1
            v = u16(e + 8)
            return v if 1 <= v <= 8 else 1
    return 1


def _jpeg_exif(data: bytes) -> bytes | None:
    i, n = 2, len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xDA, 0xD9):            # image data starts: APP segments come before it
            return None
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return None
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            return data[i + 10:i + 2 + length]
        i += 2 + length
    return None


def _png_exif(data: bytes) -> bytes | None:
    i, n = 8, len(data)
    while i + 8 <= n:
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        if kind == b"eXIf":
            return data[i + 8:i + 8 + length]
        if kind in (b"IDAT", b"IEND"):        # eXIf must come before the image data
            return None
        i += 12 + length
    return None


def _webp_exif(data: bytes) -> bytes | None:
    i, n = 12, len(data)
    while i + 8 <= n:
        kind, length = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        if kind == b"EXIF":
            body = data[i + 8:i + 8 + length]
            return body[6:] if body.startswith(b"Exif\x00\x00") else body
        i += 8 + length + (length & 1)
    return None


def orientation(data: bytes) -> int:
    """1-8 as EXIF defines it (1 = stored upright); 1 when the file has no usable tag."""
    if data.startswith(b"\xff\xd8"):
        body = _jpeg_exif(data)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        body = _png_exif(data)
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        body = _webp_exif(data)
    else:                                     # TIFF: OpenCV's libtiff reader turns it itself
        body = None
    return _tiff_orientation(body) if body else 1
