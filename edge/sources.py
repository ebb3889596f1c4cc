"""Frame sources: replay (image folder, video, in-memory frames), OpenCV capture, picamera2.

Every source yields ``Frame``s. ``Reconnecting`` wraps a source so a camera that disappears or
stalls is reopened with backoff and never raises into the loop; ``LatestFrame`` reads on its own
thread and keeps only the newest frame, counting what it drops; ``Paired`` matches an RGB and an
NIR/depth stream by timestamp.
"""
from __future__ import annotations

import logging
import os
import threading
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from . import errors as E
from . import image as I

log = logging.getLogger("edge.sources")

FAIL_LOG_EVERY = 60.0     # seconds between repeated "still cannot open" warnings
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


@dataclass
class Frame:
    image: np.ndarray          # BGR uint8
    ts: float                  # seconds; capture time (monotonic clock, or the replay's clock)
    index: int
    camera: str = "rgb"
    paired: np.ndarray | None = None   # NIR / depth image taken at (about) the same time


class EndOfStream(Exception):
    """A finite source (file, replay) has no more frames. Not an error."""


class SourceError(Exception):
    """The device is gone or returned garbage; ``Reconnecting`` reopens it."""


class Source:
    name = "source"

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame; None when none is ready yet; EndOfStream at the end; SourceError on failure."""
        raise NotImplementedError

    def close(self) -> None: ...


class Replay(Source):
    """Frames from a list of arrays, an image folder (sorted by name), a video file, or anything
    with ``frames`` (count) and ``frame(i)`` (rendered on demand, e.g. a ``scenes.Scene``).

    ``fps`` sets the replay clock (frame i has ts = i / fps). ``paced`` sleeps so frames come no
    faster than that, as a camera would; unpaced replays run as fast as the consumer reads and
    keep the virtual clock, so results do not depend on the machine's speed.
    """

    def __init__(self, frames: str | Path | Iterable[np.ndarray], fps: float = 25.0, paced: bool = False,
                 loop: bool = False):
        self.spec = frames
        self.fps, self.paced, self.loop = float(fps), paced, loop
        self.name = f"replay:{frames}" if isinstance(frames, (str, Path)) else "replay:frames"
        self._items: list | None = None
        self._cap = None
        self._i = 0
        self._t0 = None
        self.skipped = 0

    def open(self):
        spec = self.spec
        self._i = 0
        self._t0 = time.monotonic()
        if isinstance(spec, (str, Path)):
            p = Path(spec)
            if p.is_dir():
                self._items = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
                if not self._items:
                    raise E.EdgeError(E.FILE_NOT_EXIST, f"no images in replay folder {p}")
            elif p.is_file():
                self._cap = cv2.VideoCapture(str(p))
                if not self._cap.isOpened():
                    raise E.EdgeError(E.UNSUPPORT_IMAGE_TYPE, f"cannot read video {p}")
            else:
                raise E.EdgeError(E.FILE_NOT_EXIST, f"replay source not found: {p}")
        elif hasattr(spec, "frame") and hasattr(spec, "frames"):
            self._items = _Rendered(spec)
        elif self._items is None:
            self._items = list(spec)

    def read(self) -> Frame | None:
        if self._cap is not None:
            ok, img = self._cap.read()
            if not ok:
                if self.loop:
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, img = self._cap.read()
                if not ok:
                    raise EndOfStream
        else:
            n = len(self._items)
            if self._i >= n and not (self.loop and n):
                raise EndOfStream
            item = self._items[self._i % n]
            try:
                img = I.load(item) if isinstance(item, Path) else item
            except E.EdgeError as e:
                # one unreadable file in a replay folder is skipped, not a dead camera
                log.warning("replay: skipping %s: %s", item, e.message)
                self.skipped += 1
                self._i += 1
                return None
        ts = self._i / self.fps
        if self.paced:
            delay = self._t0 + ts - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ts = time.monotonic()
        f = Frame(img, ts, self._i)
        self._i += 1
        return f

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _Rendered:
    def __init__(self, scene):
        self.scene = scene

    def __len__(self):
        return self.scene.frames

    def __getitem__(self, i):
        return self.scene.frame(i)


class OpenCVCamera(Source):
    """A V4L2 device index ("0"), an RTSP/HTTP URL, or a video file through OpenCV."""

    def __init__(self, uri: str, width: int = 640, height: int = 480):
        self.uri, self.width, self.height = uri, width, height
        self.name = f"opencv:{uri}"
        self._cap = None
        self._i = 0

    def open(self):
        target = int(self.uri) if self.uri.isdigit() else self.uri
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            raise SourceError(f"cannot open camera {self.uri}: {self._why()}")
        if isinstance(target, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap

    def _why(self) -> str:
        """A likely reason OpenCV gives none for."""
        dev = f"/dev/video{self.uri}" if self.uri.isdigit() else self.uri
        if dev.startswith("/dev/"):
            if not Path(dev).exists():
                return f"{dev} does not exist (camera unplugged, or another index?)"
            if not os.access(dev, os.R_OK | os.W_OK):
                return f"no permission to use {dev} (add the user to the 'video' group)"
            return f"{dev} is busy or is not a capture device"
        if "://" in self.uri:
            return "the stream does not answer (address, credentials, network?)"
        return "not a camera index, device, stream URL or readable video file"

    def read(self) -> Frame | None:
        ok, img = self._cap.read()
        if not ok or img is None or img.size == 0:
            raise SourceError(f"camera {self.uri} returned no frame")
        self._i += 1
        return Frame(img, time.monotonic(), self._i - 1)

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Camera(Source):
    """The Raspberry Pi camera; picamera2 is imported only when this source is configured."""

    def __init__(self, width: int = 640, height: int = 480):
        self.width, self.height = width, height
        self.name = "picamera2"
        self._cam = None
        self._i = 0

    def open(self):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise E.EdgeError(E.CAMERA_ERROR, "picamera2 is not installed: on a Raspberry Pi run "
                              "`pip install 'edge-face[pi]'` (or apt install python3-picamera2)") from None
        try:
            cam = Picamera2()
            cam.configure(cam.create_video_configuration(main={"size": (self.width, self.height),
                                                                "format": "BGR888"}))
            cam.start()
        except Exception as e:  # libcamera raises plain RuntimeErrors
            raise SourceError(f"picamera2: {e}") from e
        self._cam = cam

    def read(self) -> Frame | None:
        try:
            img = self._cam.capture_array("main")
        except Exception as e:
            raise SourceError(f"picamera2: {e}") from e
        self._i += 1
        return Frame(np.ascontiguousarray(img[:, :, :3]), time.monotonic(), self._i - 1)

    def close(self):
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None


@dataclass
class SourceStats:
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    errors: int = 0
    connected: bool = False
    last_error: str = ""


class Reconnecting(Source):
    """Reopens a failing or stalled source with exponential backoff; ``read`` never raises
    anything but EndOfStream."""

    def __init__(self, inner: Source, stall_timeout: float = 3.0, backoff_min: float = 0.2,
                 backoff_max: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self.name = inner.name
        self.stall_timeout, self.backoff_min, self.backoff_max = stall_timeout, backoff_min, backoff_max
        self.clock = clock
        self.stats = SourceStats()
        self._backoff = backoff_min
        self._retry_at = 0.0
        self._last_frame = clock()
        self._open = False
        self._logged_error = ("", -math.inf)

    def open(self):
        self._try_open()

    def _try_open(self):
        try:
            self.inner.open()
        except (SourceError, OSError, E.EdgeError, RuntimeError, cv2.error) as e:
            self._fail(f"open failed: {e}")
            return
        self._open = True
        self.stats.connected = True
        self._last_frame = self.clock()
        self._backoff = self.backoff_min

    def _fail(self, why: str):
        self.stats.errors += 1
        self.stats.last_error = why
        if self._open or self.stats.connected:
            log.warning("source %s lost (%s); reconnecting", self.name, why)
        elif why != self._logged_error[0] or self.clock() - self._logged_error[1] >= FAIL_LOG_EVERY:
            # say what failed and why: at once, then every FAIL_LOG_EVERY s while it keeps failing
            log.warning("source %s: %s; retrying (up to every %g s)", self.name, why, self.backoff_max)
            self._logged_error = (why, self.clock())
        self._close_inner()
        self._retry_at = self.clock() + self._backoff
        self._backoff = min(self.backoff_max, self._backoff * 2)

    def _close_inner(self):
        self._open = False
        self.stats.connected = False
        try:
            self.inner.close()
        except Exception as e:  # a dead device can fail to close too; nothing to do about it
            log.debug("closing %s: %s", self.name, e)

    def read(self) -> Frame | None:
        now = self.clock()
        if not self._open:
            if now < self._retry_at:
                time.sleep(min(0.01, self._retry_at - now))
                return None
            self.stats.reconnects += 1
            self._try_open()
            if not self._open:
                return None
            log.info("source %s connected", self.name)
        try:
            f = self.inner.read()
        except EndOfStream:
            raise
        except Exception as e:  # any device failure: reopen, never kill the loop
            self._fail(str(e) or type(e).__name__)
            return None
        if f is None or f.image is None or f.image.size == 0:
            if self.clock() - self._last_frame > self.stall_timeout:
                self._fail(f"no frame for {self.stall_timeout:g} s")
            return None
        self._last_frame = self.clock()
        self.stats.frames += 1
        return f

    def close(self):
        self._close_inner()


class LatestFrame:
    """Reads a source on its own thread and hands the consumer only the newest frame: a slow
    consumer drops stale frames (counted) instead of falling behind the camera."""

    def __init__(self, source: Reconnecting):
        self.source = source
        self.stats = source.stats
        self._cv = threading.Condition()
        self._frame: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"grab-{source.name}", daemon=True)

    def start(self) -> "LatestFrame":
        self.source.open()
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                f = self.source.read()
            except EndOfStream:
                with self._cv:
                    self._ended = True
                    self._cv.notify_all()
                return
            if f is None:
                continue
            with self._cv:
                if self._frame is not None:
                    self.stats.dropped += 1
                self._frame = f
                self._cv.notify_all()

    def get(self, timeout: float = 0.5) -> Frame | None:
        """The newest unread frame, or None after ``timeout``; EndOfStream when the source ended."""
        with self._cv:
            if self._frame is None and not self._ended:
                self._cv.wait(timeout)
            f, self._frame = self._frame, None
            if f is None and self._ended:
                raise EndOfStream
            return f

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.source.close()


class Paired(Source):
    """An RGB source and an NIR (or depth) source, paired by nearest timestamp.

    A frame is emitted only when the second camera has a frame within ``max_skew`` seconds;
    liveness needs both views of the same instant.
    """

    def __init__(self, rgb: Source, second: Source, max_skew: float = 0.05):
        self.rgb, self.second, self.max_skew = rgb, second, max_skew
        self.name = f"{rgb.name}+{second.name}"
        self._pending: list[Frame] = []

    def open(self):
        self.rgb.open()
        self.second.open()

    def read(self) -> Frame | None:
        s = self.second.read()
        if s is not None:
            self._pending = (self._pending + [s])[-8:]
        f = self.rgb.read()
        if f is None or not self._pending:
            return None
        best = min(self._pending, key=lambda p: abs(p.ts - f.ts))
        if abs(best.ts - f.ts) > self.max_skew:
            return None
        self._pending = [p for p in self._pending if p.ts > best.ts]
        f.paired = best.image
        return f

    def close(self):
        self.rgb.close()
        self.second.close()


def orient(img: np.ndarray, rotate: int = 0, mirror: bool = False) -> np.ndarray:
    """Rotate clockwise by 0/90/180/270 degrees, then mirror left-right: the offline SDK detects
    upright faces only, so a camera mounted sideways is turned upright before detection."""
    if rotate == 90:
        img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    elif rotate == 180:
        img = cv2.rotate(img, cv2.ROTATE_180)
    elif rotate == 270:
        img = cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if mirror:
        img = cv2.flip(img, 1)
    return img


def _turn(x, y, w, h, rotate):
    """Where pixel (x, y) of a w x h image lands after a clockwise turn; and the new size."""
    if rotate == 90:
        return h - y, x, h, w
    if rotate == 180:
        return w - x, h - y, w, h
    if rotate == 270:
        return y, w - x, h, w
    return x, y, w, h


def map_box(box, raw_size, src: tuple[int, bool], dst: tuple[int, bool]):
    """A box (x, y, w, h) found in the image oriented by ``src`` (rotate, mirror) of a raw camera
    frame of ``raw_size`` (w, h), expressed in the image oriented by ``dst``: detection runs
    upright, the display may be turned and mirrored differently."""
    W, H = raw_size
    pts = [(box[0], box[1]), (box[0] + box[2], box[1] + box[3])]
    rot, mir = src
    w, h = (H, W) if rot in (90, 270) else (W, H)
    raw = []
    for x, y in pts:                       # undo src: mirror, then the turn
        if mir:
            x = w - x
        x, y, _, _ = _turn(x, y, w, h, (360 - rot) % 360)
        raw.append((x, y))
    out = []
    for x, y in raw:                       # apply dst: the turn, then mirror
        x, y, w2, h2 = _turn(x, y, W, H, dst[0])
        if dst[1]:
            x = w2 - x
        out.append((x, y))
    (x0, y0), (x1, y1) = out
    return [min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0)]


def preflight(src: Source) -> None:
    """Refuse at start what can never work: a replay file or folder that does not exist, an
    empty folder, a video OpenCV cannot read. Cameras are not checked: they may come back."""
    if isinstance(src, Paired):
        preflight(src.rgb)
        preflight(src.second)
    elif isinstance(src, Replay) and isinstance(src.spec, (str, Path)):
        src.open()
        src.close()


def make(kind: str, uri: str = "", width: int = 640, height: int = 480, fps: float = 25.0,
         paced: bool = True, loop: bool = False) -> Source:
    if kind == "replay":
        return Replay(uri, fps=fps, paced=paced, loop=loop)
    if kind == "opencv":
        return OpenCVCamera(uri, width, height)
    if kind == "picamera2":
        return Picamera2Camera(width, height)
    raise E.EdgeError(E.PARARM_ERROR, f"unknown source kind {kind!r}: use replay, opencv or picamera2")


def from_uri(uri: str, **kw) -> Source:
    """`--source` on the command line: a folder or video replays, a number or URL is a camera."""
    if uri == "picamera2":
        return make("picamera2", **{k: v for k, v in kw.items() if k in ("width", "height")})
    p = Path(uri)
    if not (uri.isdigit() or "://" in uri or uri.startswith("/dev/") or p.exists()):
        # a camera may come back, a mistyped path never will: refuse it now, not retry forever
        raise E.EdgeError(E.FILE_NOT_EXIST, f"source {uri} not found: give an existing image folder or video "
                          "file, a camera index or /dev/videoN, an rtsp:// or http:// URL, or 'picamera2'")
    if p.is_dir() or (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES):
        return make("replay", uri, **kw)
    return make("opencv", uri, **{k: v for k, v in kw.items() if k in ("width", "height")})


__all__ = ["Frame", "EndOfStream", "SourceError", "Source", "Replay", "OpenCVCamera", "Picamera2Camera",
           "Reconnecting", "LatestFrame", "Paired", "orient", "map_box", "make", "from_uri", "preflight",
           "SourceStats"]
