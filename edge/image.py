"""Decode images into 8-bit BGR arrays, refusing what cannot be used instead of guessing."""
from __future__ import annotations

import os

import cv2
import numpy as np

from . import errors as E
from .exif import orientation as exif_orientation

MAX_PIXELS = 40_000_000        # the "huge" bound; a 40 MP RGB frame is ~120 MB decoded
MAX_FILE_BYTES = 64 * 1024 * 1024

# signatures of the formats we accept (the seed's PNG/JPG/JPEG/BMP, plus WebP/TIFF which OpenCV reads)
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width/height from the header without decoding (JPEG, PNG, BMP, WebP, TIFF), so a
    decompression bomb is refused before OpenCV allocates for it."""
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker == 0xFF:          # a fill byte before a marker (libjpeg skips any number)
                i += 1
                continue
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h = int.from_bytes(data[i + 5:i + 7], "big")
                w = int.from_bytes(data[i + 7:i + 9], "big")
                return w, h
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    if data.startswith(b"BM") and len(data) >= 26:
        return (abs(int.from_bytes(data[18:22], "little", signed=True)),
                abs(int.from_bytes(data[22:26], "little", signed=True)))
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8 ":
            return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
        if kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "little" if data[:2] == b"II" else "big"
    u = lambda o, n: int.from_bytes(data[o:o + n], order)
    ifd = u(4, 4)
    if ifd + 2 > len(data):
        return None
    dims = {}
    for k in range(min(u(ifd, 2), 1024)):
        e = ifd + 2 + 12 * k
        if e + 12 > len(data):
            break
        tag, kind = u(e, 2), u(e + 2, 2)
        if tag in (256, 257):
            dims[tag] = u(e + 8, 2) if kind == 3 else u(e + 8, 4)
    return (dims[256], dims[257]) if len(dims) == 2 else None


def _jpeg_complete(data: bytes) -> bool:
    """Whether the JPEG's marker structure reaches its end marker (EOI). Segments are skipped by
    their length (so an EXIF thumbnail's own EOI does not count), entropy-coded data is searched
    for the next real marker; whatever follows EOI (camera trailers, padding) is ignored."""
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:                   # stray bytes between segments (libjpeg skips them too)
            i = data.find(b"\xff", i)
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xFF:                    # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return True
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if i + 4 > n:
            return False
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker != 0xDA:
            continue
        # start of scan: entropy-coded data runs to the next marker that is not a stuffed 00,
        # a restart marker or a fill byte
        while True:
            j = data.find(b"\xff", i)
            if j < 0 or j + 1 >= n:
                return False
            nxt = data[j + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                i = j + 1 if nxt == 0xFF else j + 2
                continue
            i = j
            break
    return False


def _png_complete(data: bytes) -> bool:
    """Whether the PNG's chunk chain reaches IEND (trailing bytes after it are ignored)."""
    i, n = 8, len(data)
    while i + 8 <= n:
        length = int.from_bytes(data[i:i + 4], "big")
        if data[i + 4:i + 8] == b"IEND":
            return True
        i += 12 + length
    return False


def _truncated(data: bytes) -> bool:
    # OpenCV decodes a cut-off JPEG/PNG into a half-grey picture without complaint; the file's
    # own structure tells whether its end was reached
    if data.startswith(b"\xff\xd8"):
        return not _jpeg_complete(data)
    if data.startswith(b"\x89PNG"):
        return not _png_complete(data)
    return False


def decode(data: bytes, name: str = "image") -> np.ndarray:
    if not data:
        raise E.EdgeError(E.IMAGE_IS_EMPTY, f"{name} is empty")
    if len(data) > MAX_FILE_BYTES:
        raise E.EdgeError(E.FILE_TOO_BIG, f"{name} is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")
    if not data.startswith(_MAGIC):
        raise E.EdgeError(E.UNSUPPORT_IMAGE_TYPE, f"{name} is not a JPEG, PNG, BMP, WebP or TIFF image")
    size = _header_size(data)
    if size is None and data.startswith(b"\xff\xd8"):
        # libjpeg needs the frame header too; one this scan cannot find would be decoded at
        # whatever size it claims (a 625-byte file with a fill byte before it took 2.4 GB)
        raise E.EdgeError(E.IMAGE_TRANSFORM_FAILED, f"{name} is corrupt: no JPEG frame header")
    if size and size[0] * size[1] > MAX_PIXELS:
        raise E.EdgeError(E.FILE_TOO_BIG, f"{name} is {size[0]}x{size[1]}; images over "
                          f"{MAX_PIXELS // 1_000_000} MP are refused: downscale it first")
    if _truncated(data):
        raise E.EdgeError(E.IMAGE_TRANSFORM_FAILED, f"{name} is truncated (its end marker is missing): "
                          "copy the file again")
    buf = np.frombuffer(data, np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise E.EdgeError(E.IMAGE_TRANSFORM_FAILED, f"{name} is corrupt or truncated and cannot be decoded")
    # IMREAD_UNCHANGED keeps the stored pixel order: a phone photo held upright is stored
    # sideways with an EXIF orientation tag, which we apply ourselves
    return upright(to_bgr8(img, name), exif_orientation(data))


def upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright for an EXIF orientation 1-8 (anything else: as stored)."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = img.swapaxes(0, 1)
    elif orientation == 6:
        img = img.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        img = img[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        img = img.swapaxes(0, 1)[::-1]
    return np.ascontiguousarray(img)


def to_bgr8(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Any decoded array (gray, BGRA, 16-bit, float) -> contiguous uint8 BGR."""
    if img is None or not isinstance(img, np.ndarray) or img.size == 0:
        raise E.EdgeError(E.IMAGE_IS_EMPTY, f"{name} is empty")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise E.EdgeError(E.UNSUPPORT_IMAGE_TYPE, f"{name} has unsupported shape {img.shape}")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise E.EdgeError(E.FILE_TOO_BIG, f"{name} is {img.shape[1]}x{img.shape[0]}; over "
                          f"{MAX_PIXELS // 1_000_000} MP is refused")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise E.EdgeError(E.UNSUPPORT_IMAGE_TYPE, f"{name} has unsupported pixel type {img.dtype}")
    if img.ndim == 2 or img.shape[2] == 1:
        img = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        # composite on white: transparent margins of cut-out portraits would otherwise turn black
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(img)


def load(path: str | os.PathLike) -> np.ndarray:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no such image file: {path}")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise E.EdgeError(E.FILE_TOO_BIG, f"{path} is {size} bytes; the limit is {MAX_FILE_BYTES}")
    with open(path, "rb") as f:
        return decode(f.read(), os.path.basename(path))
