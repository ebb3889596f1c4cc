"""Typed configuration, validated at load. Every default is the seed's or a recorded measurement.

All device state lives under one directory, ``EDGE_HOME`` (default ``~/.local/share/edge``):
``models/``, ``db/``, ``license/``, ``logs/``.
"""
from __future__ import annotations

import dataclasses
import os
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import errors as E


def edge_home() -> Path:
    env = os.environ.get("EDGE_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "edge"


@dataclass
class DetectConfig:
    # "blazeface_full" (MediaPipe full-range, 192x192: faces up to ~5 m), "blazeface_short"
    # (128x128, faces within ~2 m), or the id of a registered detector card such as "yunet"
    # (user-supplied ONNX, see models/README.md)
    detector: str = "blazeface_full"
    max_detect_num: int = 5          # detect.json default; range 1-50
    min_face_size: int = 0           # detect.json default (pixels; 0 = no limit)
    not_face_thr: float = 0.5        # detect.json default face-confidence threshold
    nms_iou: float = 0.3             # MediaPipe's weighted-NMS suppression threshold

    def validate(self):
        if not isinstance(self.detector, str) or not self.detector.replace("_", "").replace("-", "").isalnum():
            raise _bad(f"detect.detector = {self.detector!r} is not a model id")
        _range("detect.max_detect_num", self.max_detect_num, 1, 50)
        _range("detect.min_face_size", self.min_face_size, 0, 10000)
        _range("detect.not_face_thr", self.not_face_thr, 0.0, 1.0)
        _range("detect.nms_iou", self.nms_iou, 0.0, 1.0)


@dataclass
class EmbedConfig:
    # "dlib_resnet" (built by `edge models build`) or a path to a model card (JSON) describing
    # an ArcFace-style 112x112 ONNX embedder the user supplies
    embedder: str = "dlib_resnet"
    # average each template with the mirrored chip's: lfw-dev rank-1 95.80 -> 96.52 % for one
    # more embedder run per face
    flip: bool = True

    def validate(self):
        if not self.embedder:
            raise _bad("embed.embedder must not be empty")


@dataclass
class RecognitionConfig:
    # 0-100 score calibrated to 1:1 false-accept rates (edge/scores.py); 80 is the seed's
    # threshold and its "FAR 1 in 10,000": measured on lfw-dev 1e-4 at 80 (FRR 24.7 %), 1e-3 at
    # 70 (FRR 4.8 %). Larger libraries need more: README "Scores, thresholds and measured accuracy".
    threshold: float = 80.0
    top_k: int = 1

    def validate(self):
        _range("recognition.threshold", self.threshold, 0.0, 100.0)
        _range("recognition.top_k", self.top_k, 1, 50)


@dataclass
class LibraryConfig:
    max_users: int = 30000           # seed: offline library up to 3万 users
    max_faces_per_user: int = 20     # seed: 20 faces per user (222210)
    keep_crops: bool = True          # aligned 150x150 chips kept for re-embedding on model change
    keep_thumbnails: bool = True     # the C++ SDK stores a thumbnail with image registration
    reembed_on_model_change: bool = True

    def validate(self):
        _range("library.max_users", self.max_users, 1, 10_000_000)
        _range("library.max_faces_per_user", self.max_faces_per_user, 1, 1000)


# the v3 API's quality_control table: max occlusion per region, min illumination, max blur,
# min completeness
PRESETS = {
    "NONE": {"occlusion": 1.0, "illumination": 0, "blur": 1.0, "completeness": 0.0},
    "LOW": {"occlusion": 0.8, "illumination": 20, "blur": 0.8, "completeness": 0.0},
    "NORMAL": {"occlusion": 0.6, "illumination": 40, "blur": 0.6, "completeness": 0.0},
    "HIGH": {"occlusion": 0.2, "illumination": 100, "blur": 0.2, "completeness": 1.0},
}


@dataclass
class QualityConfig:
    preset: str = "NORMAL"           # LOW / NORMAL / HIGH as the v3 API's quality_control, or NONE
    # per-figure overrides of the preset; negative = use the preset's value
    max_occlusion: float = -1.0
    min_illumination: int = -1
    max_blur: float = -1.0
    min_completeness: float = -1.0
    max_illumination: int = 240      # capture SDK brightnessMaxValue (loose preset: 240)
    max_yaw: float = 15.0            # offline SDK (Windows) recommends -15..15 for yaw, pitch, roll
    max_pitch: float = 15.0
    max_roll: float = 15.0
    min_face_size: int = 80          # v3 detect page: 80-200 px recommended (offline floor: 30)
    max_face_size: int = 0           # 0 = no limit; set to flag "too close" at a gate
    require_inside: bool = True      # offline SDK: the face completely inside the frame
    min_best_score: float = 50.0     # offline SDK: best-face score 0-100, recommended > 50
    check_occlusion: bool = True     # RGB only; see module docstring

    def validate(self, bad=None):
        bad = bad or _bad
        if self.preset not in PRESETS:
            raise bad(f"quality.preset = {self.preset!r}; choose one of {', '.join(PRESETS)}")
        for name, hi in (("max_yaw", 90), ("max_pitch", 90), ("max_roll", 180), ("min_best_score", 100)):
            v = getattr(self, name)
            if not 0 <= v <= hi:
                raise bad(f"quality.{name} = {v!r} is outside 0..{hi}")
        if not 0 <= self.max_illumination <= 255:
            raise bad(f"quality.max_illumination = {self.max_illumination} is outside 0..255")
        if self.min_face_size < 0 or self.max_face_size < 0:
            raise bad("quality.min_face_size and max_face_size must be >= 0")

    def limits(self) -> dict:
        p = dict(PRESETS[self.preset])
        for key, over in (("occlusion", self.max_occlusion), ("illumination", self.min_illumination),
                          ("blur", self.max_blur), ("completeness", self.min_completeness)):
            if over >= 0:
                p[key] = over
        if self.require_inside:
            p["completeness"] = max(p["completeness"], 0.98)   # box rounding at the frame edge
        return p


@dataclass
class EnrolConfig:
    # one enrolment quality policy for user add/update, batch import and the HTTP API
    # (edge/enrol_policy.py); seed values, looser than the camera loop's gate
    check: bool = True
    min_face_size: int = 30          # offline SDK: minimum face 30x30 px
    min_illumination: int = 40       # cloud quality reference: illumination > 40
    max_blur: float = 0.8            # Linux SDK: blur < 0.8
    max_yaw: float = 30.0            # offline SDK: recognisable up to yaw/pitch +-30 degrees
    max_pitch: float = 30.0

    def validate(self):
        _range("enrol.min_face_size", self.min_face_size, 0, 10000)
        _range("enrol.min_illumination", self.min_illumination, 0, 255)
        _range("enrol.max_blur", self.max_blur, 0.0, 1.0)
        _range("enrol.max_yaw", self.max_yaw, 0.0, 90.0)
        _range("enrol.max_pitch", self.max_pitch, 0.0, 90.0)


@dataclass
class CameraConfig:
    kind: str = "opencv"             # opencv (V4L2 index, RTSP/HTTP URL, video file), picamera2, replay
    uri: str = "0"
    width: int = 640                 # the offline SDK recommends 640x480 cameras
    height: int = 480
    fps: float = 25.0                # replay clock
    loop: bool = False               # replay: start again at the end
    # the offline SDK detects upright faces only: turn the image upright for detection, and
    # separately for display
    rotate: int = 0
    mirror: bool = False
    display_rotate: int = 0
    display_mirror: bool = False
    stall_timeout: float = 3.0       # no frame for this long = camera gone: reopen it
    backoff_max: float = 10.0        # reopen attempts back off from 0.2 s up to this
    # a second camera (NIR or depth) paired with this one by timestamp for liveness
    second_kind: str = ""
    second_uri: str = ""
    max_skew: float = 0.05

    def validate(self):
        _choice("camera.kind", self.kind, ("opencv", "picamera2", "replay"))
        for k in ("rotate", "display_rotate"):
            _choice(f"camera.{k}", getattr(self, k), (0, 90, 180, 270))
        _range("camera.fps", self.fps, 0.1, 1000)
        _range("camera.stall_timeout", self.stall_timeout, 0.1, 3600)
        _range("camera.backoff_max", self.backoff_max, 0.2, 3600)
        if self.second_kind:
            _choice("camera.second_kind", self.second_kind, ("opencv", "picamera2", "replay"))


@dataclass
class TrackConfig:
    # track.json: detect_intv_before_track = 0.02 s (the doc says ms; seconds is the only
    # plausible unit). While tracking, the landmark model follows each face every frame, so the
    # detector only has to find newcomers: 0.2 s as the capture SDK demo's detectInterval.
    detect_intv_before_track: float = 0.02
    detect_intv_during_track: float = 0.2
    max_miss: float = 0.6            # seconds a track survives unseen (short occlusions)
    iou_match: float = 0.3

    def validate(self):
        _range("track.detect_intv_before_track", self.detect_intv_before_track, 0.0, 60.0)
        _range("track.detect_intv_during_track", self.detect_intv_during_track, 0.0, 60.0)
        _range("track.max_miss", self.max_miss, 0.0, 60.0)
        _range("track.iou_match", self.iou_match, 0.0, 1.0)


@dataclass
class DecisionConfig:
    mode: str = "gate"               # gate | attendance | verify (1:1 against id_photo)
    groups: list = field(default_factory=list)   # groups searched; empty = the whole library
    threshold: float = -1.0          # < 0: recognition.threshold
    min_frames: int = 2              # quality-passing frames before the first attempt
    best_frames: int = 3             # best frames kept per track between attempts
    vote: int = 2                    # agreeing recognitions that make a decision
    vote_window: int = 3             # ... out of the last this many; none matched = unknown
    recheck: float = 2.0             # seconds between re-checks of a decided track
    cooldown: float = 5.0            # gate: seconds before the same user opens again
    prompt_interval: float = 1.0     # at most one quality prompt per track per this many s
    id_photo: str = ""               # verify mode: the ID photo the live face is compared with

    def validate(self):
        _choice("decision.mode", self.mode, ("gate", "attendance", "verify"))
        if not all(isinstance(g, str) for g in self.groups):
            raise _bad("decision.groups must be a list of group ids")
        _range("decision.min_frames", self.min_frames, 1, 100)
        _range("decision.best_frames", self.best_frames, 1, 20)
        _range("decision.vote_window", self.vote_window, 1, 50)
        _range("decision.vote", self.vote, 1, self.vote_window)
        _range("decision.recheck", self.recheck, 0.0, 3600.0)
        _range("decision.cooldown", self.cooldown, 0.0, 86400.0)
        if self.mode == "verify" and not self.id_photo:
            raise _bad("decision.id_photo is required in verify mode")


LIVENESS_PARTS = ("rgb", "nir", "depth", "action")
LIVENESS_LEVELS = ("NONE", "LOW", "NORMAL", "HIGH")
ACTIONS = ("blink", "open_mouth", "turn_left", "turn_right", "look_up", "look_down", "nod", "shake")


@dataclass
class ActionLivenessConfig:
    # capture SDK: the console recommends >= 3 actions in random order; its demos time out a
    # step after 10-15 s (conditionTimeout); action_live.json: every *_threshold 0.5
    count: int = 3
    actions: list = field(default_factory=lambda: list(ACTIONS))
    timeout: float = 10.0            # seconds per action
    threshold: float = 0.5           # action confidence 0-1 (edge/liveness/action.py says how it is made)
    identity_score: float = 80.0     # every step's face must still score this against the first (0-100)

    def validate(self):
        _range("liveness.action.count", self.count, 1, len(ACTIONS))
        if not self.actions or any(a not in ACTIONS for a in self.actions):
            raise _bad(f"liveness.action.actions = {self.actions!r}; choose from {', '.join(ACTIONS)}")
        _range("liveness.action.timeout", self.timeout, 0.5, 600.0)
        _range("liveness.action.threshold", self.threshold, 0.0, 1.0)
        _range("liveness.action.identity_score", self.identity_score, 0.0, 100.0)


@dataclass
class LivenessConfig:
    # "none", or the checks that must all pass, joined by "+": the offline SDK's modes rgb,
    # rgb+nir, rgb+depth, rgb+nir+depth (nir and depth alone too), plus "action" (a random
    # challenge of FaceMesh-measured actions), e.g. "rgb+action"
    mode: str = "none"
    # the v3 API's liveness_control: NONE (scores reported, nothing refused) / LOW / NORMAL / HIGH,
    # mapped per check to the thresholds in edge/liveness/levels.py (README "Liveness")
    level: str = "NORMAL"
    threshold: float = -1.0          # RGB threshold override (0-1); < 0 = the level's
    nir_threshold: float = -1.0      # NIR / depth overrides; < 0 = the level's
    depth_threshold: float = -1.0
    # multi-frame: a track's liveness is the mean of its last `frames` judged frames (one model
    # run per decision attempt, on that attempt's best frame). 2 = the two attempts a decision
    # needs anyway (decision.vote): no added latency; 3 measured no better (README "Liveness")
    frames: int = 2
    attempts: int = 3                # failed checks in one pass before a spoof event
    rgb_models: list = field(default_factory=lambda: ["minifasnet_v2", "minifasnet_v1se"])
    # RGB -> NIR camera mapping, measured by `edge calibrate nir`: nir = rgb * nir_scale + nir_offset
    nir_offset: list = field(default_factory=lambda: [0.0, 0.0])
    nir_scale: float = 1.0
    # depth pixels outside this range (millimetres) are holes; structured-light / ToF modules
    # measure about 0.3-3 m
    depth_min_mm: int = 200
    depth_max_mm: int = 3000
    action: ActionLivenessConfig = field(default_factory=ActionLivenessConfig)

    @property
    def parts(self) -> tuple[str, ...]:
        return () if self.mode == "none" else tuple(self.mode.split("+"))

    def validate(self):
        parts = self.mode.split("+") if isinstance(self.mode, str) else [None]
        if self.mode != "none" and (any(p not in LIVENESS_PARTS for p in parts) or len(set(parts)) != len(parts)):
            raise _bad(f"liveness.mode = {self.mode!r}; \"none\" or checks joined by \"+\" from "
                       f"{', '.join(LIVENESS_PARTS)} (e.g. \"rgb+nir\")")
        _choice("liveness.level", self.level, LIVENESS_LEVELS)
        for name in ("threshold", "nir_threshold", "depth_threshold"):
            v = getattr(self, name)
            if v != -1.0:
                _range(f"liveness.{name}", v, 0.0, 1.0)
        _range("liveness.frames", self.frames, 1, 20)
        _range("liveness.attempts", self.attempts, 1, 100)
        if not self.rgb_models or not all(isinstance(m, str) and m for m in self.rgb_models):
            raise _bad("liveness.rgb_models must list anti-spoof model ids")
        if len(self.nir_offset) != 2 or not all(isinstance(v, (int, float)) for v in self.nir_offset):
            raise _bad("liveness.nir_offset must be [dx, dy] in pixels")
        _range("liveness.nir_scale", self.nir_scale, 0.1, 10.0)
        _range("liveness.depth_min_mm", self.depth_min_mm, 0, 65535)
        _range("liveness.depth_max_mm", self.depth_max_mm, self.depth_min_mm + 1, 65535)
        self.action.validate()


@dataclass
class AttendanceConfig:
    window_hours: float = 24.0       # one check-in/check-out record per user per window
    window_start: int = 0            # hour of day (local time) the first window starts
    min_checkout_gap: float = 60.0   # seconds after check-in before a sighting counts as check-out

    def validate(self):
        _range("attendance.window_hours", self.window_hours, 0.01, 24 * 31)
        _range("attendance.window_start", self.window_start, 0, 23)


@dataclass
class DynamicLibraryConfig:
    # the seed's 动态底库: a live, confident match refreshes the user's templates
    enabled: bool = False
    min_score: float = 90.0
    margin: float = 10.0             # over the second-best user
    max_faces: int = 3               # dynamic faces kept per user (oldest replaced)
    # only captures that passed a real liveness check: with liveness off, a photo held up to the
    # camera could otherwise become a template
    require_liveness: bool = True

    def validate(self):
        _range("dynamic_library.min_score", self.min_score, 0.0, 100.0)
        _range("dynamic_library.max_faces", self.max_faces, 1, 20)


@dataclass
class JsonlOutput:
    path: str = "events/events.jsonl"   # relative to EDGE_HOME; "" = off
    types: list = field(default_factory=list)   # empty = every event type
    max_mb: float = 64.0             # rotate to .1 .. .<keep> past this size (SD cards fill up)
    keep: int = 5


@dataclass
class WebhookOutput:
    url: str = ""
    timeout: float = 3.0
    retry_max: float = 60.0          # backoff cap between delivery attempts (s)
    types: list = field(default_factory=lambda: ["decision", "unknown", "spoof", "verify"])


@dataclass
class MqttOutput:
    host: str = ""
    port: int = 1883
    topic: str = "edge/events"       # events go to <topic>/<type>
    qos: int = 1
    client_id: str = ""
    types: list = field(default_factory=list)


@dataclass
class RelayOutput:
    pin: str = ""                    # gpiozero pin name, e.g. "GPIO17"; "" = no relay
    active_high: bool = True
    pulse_ms: int = 1000


@dataclass
class WiegandOutput:
    d0: str = ""                     # gpiozero pin names of the DATA0 / DATA1 lines
    d1: str = ""
    bits: int = 26                   # 26 or 34
    facility: int = 0                # facility code (Wiegand 26: 0-255)
    pulse_us: int = 100              # line low per bit
    interval_us: int = 2000          # bit period


@dataclass
class OutputsConfig:
    jsonl: JsonlOutput = field(default_factory=JsonlOutput)
    webhook: WebhookOutput = field(default_factory=WebhookOutput)
    mqtt: MqttOutput = field(default_factory=MqttOutput)
    relay: RelayOutput = field(default_factory=RelayOutput)
    wiegand: WiegandOutput = field(default_factory=WiegandOutput)
    gpio_mock: bool = False          # gpiozero's mock pins: dry runs and tests without hardware
    queue: int = 1000                # events buffered per output before the oldest is dropped

    def validate(self):
        _choice("outputs.wiegand.bits", self.wiegand.bits, (26, 34))
        _range("outputs.wiegand.facility", self.wiegand.facility, 0, 255 if self.wiegand.bits == 26 else 65535)
        _range("outputs.mqtt.qos", self.mqtt.qos, 0, 2)
        _range("outputs.relay.pulse_ms", self.relay.pulse_ms, 1, 600000)
        _range("outputs.queue", self.queue, 1, 1_000_000)
        if bool(self.wiegand.d0) != bool(self.wiegand.d1):
            raise _bad("outputs.wiegand needs both d0 and d1")


@dataclass
class LicenseConfig:
    # the vendor key and the fingerprint's /proc,/sys root are deliberately not config keys:
    # a config must not be able to swap the key or borrow another device's identifiers
    # (edge/license/__init__.py)
    server: str = ""                 # online activation: the vendor's license server URL


@dataclass
class ServeConfig:
    """`edge serve`: the v3-compatible HTTP API and the admin page (README "Device service")."""
    # loopback by default: a terminal is opened to the LAN on purpose (host = "0.0.0.0"), and
    # then preferably with TLS (tls_cert / tls_key)
    host: str = "127.0.0.1"
    port: int = 8300                 # the private deployment's face service port (seed: HTTP 8300)
    camera: bool = False             # also run the configured camera loop in the same process
    token_ttl: int = 2592000         # seed: access_token lifetime 30 days = 2592000 s
    qps: float = 20.0                # per API key; seed: private deployment basic edition <= 20 QPS
    daily_limit: int = 0             # requests per API key per day (error 17); 0 = no limit
    max_body_mb: float = 10.0        # seed: total request data < 10 MB
    face_tokens: int = 500           # detect/search face_tokens kept in memory (seed: valid 60 min)
    session_hours: float = 12.0      # admin page session lifetime
    tls_cert: str = ""               # PEM files; both set = HTTPS (and Secure cookies)
    tls_key: str = ""

    def validate(self):
        _range("serve.port", self.port, 1, 65535)
        _range("serve.token_ttl", self.token_ttl, 60, 10 * 365 * 86400)
        _range("serve.qps", self.qps, 0.1, 100000.0)
        _range("serve.daily_limit", self.daily_limit, 0, 10**9)
        _range("serve.max_body_mb", self.max_body_mb, 0.1, 100.0)
        _range("serve.face_tokens", self.face_tokens, 0, 100000)
        _range("serve.session_hours", self.session_hours, 0.01, 24 * 30)
        if not isinstance(self.host, str) or not self.host:
            raise _bad("serve.host must be a host name or address")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise _bad("serve.tls_cert and serve.tls_key go together")


@dataclass
class Config:
    home: Path = field(default_factory=edge_home)
    # EDGE_MODELS_DIR lets several homes (tests, instances) share one built model pack
    models_dir: Path | None = field(default_factory=lambda: Path(os.environ["EDGE_MODELS_DIR"])
                                    if os.environ.get("EDGE_MODELS_DIR") else None)
    threads: int = 1                 # onnxruntime intra-op threads; gate terminals share cores
    # onnxruntime execution providers, in order of preference: an NPU's provider (e.g.
    # "RknpuExecutionProvider" with onnxruntime's Rockchip build) first, CPU last
    providers: list = field(default_factory=lambda: ["CPUExecutionProvider"])
    # "int8": run the `<id>_int8` variants of the detector, FaceMesh and the embedder made by
    # `edge models quantize` (README "int8 models": speed and accuracy measured against float)
    precision: str = "float"
    detect: DetectConfig = field(default_factory=DetectConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    attendance: AttendanceConfig = field(default_factory=AttendanceConfig)
    dynamic_library: DynamicLibraryConfig = field(default_factory=DynamicLibraryConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    license: LicenseConfig = field(default_factory=LicenseConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    enrol: EnrolConfig = field(default_factory=EnrolConfig)

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else self.home / "models"

    @property
    def db_path(self) -> Path:
        return self.home / "db" / "face.db"

    def validate(self) -> "Config":
        _range("threads", self.threads, 1, 64)
        _directory("home (EDGE_HOME)", self.home)
        if not self.providers or not all(isinstance(p, str) and p.endswith("ExecutionProvider") for p in self.providers):
            raise _bad(f"providers = {self.providers!r}: a non-empty list of onnxruntime provider names "
                       "such as \"CPUExecutionProvider\"")
        _choice("precision", self.precision, ("float", "int8"))
        for sect in (self.detect, self.embed, self.recognition, self.library, self.camera, self.track,
                     self.decision, self.liveness, self.attendance, self.dynamic_library, self.outputs,
                     self.serve, self.enrol):
            sect.validate()
        self.quality.validate(_bad)
        paired = {"nir", "depth"} & set(self.liveness.parts)
        if paired and not self.camera.second_kind:
            # every check would fail with "no paired frame": nobody would ever pass
            raise _bad(f"liveness.mode = {self.liveness.mode!r} needs the {' and '.join(sorted(paired))} camera: set "
                       "camera.second_kind and camera.second_uri (README \"Liveness\")")
        return self


def _bad(msg: str) -> E.EdgeError:
    return E.EdgeError(E.PARARM_ERROR, f"configuration: {msg}")


def _directory(name, path: Path):
    """A directory, or one that can be made: its nearest existing ancestor must be a directory."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise _bad(f"{name} = {str(path)!r}: {p} is a file, not a directory")


def _range(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise _bad(f"{name} = {v!r} is outside {lo}..{hi}")


def _choice(name, v, options):
    if v not in options:
        raise _bad(f"{name} = {v!r}; choose one of {', '.join(options)}")


REMOVED = {
    "license.public_key": "the vendor key is installed as /etc/edge/vendor.pub (deploy/install.sh "
                          "VENDOR_KEY=...) or EDGE_HOME/license/vendor.pub, never named by a config",
    "license.root": "the hardware fingerprint is always read from this device's own /proc and /sys",
}


def _fill(obj, data: dict, prefix: str):
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            if f"{prefix}{key}" in REMOVED:
                raise _bad(f"{prefix}{key} is no longer accepted: {REMOVED[prefix + key]}")
            raise _bad(f"unknown key {prefix}{key}")
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur):
            if not isinstance(value, dict):
                raise _bad(f"{prefix}{key} must be a table")
            _fill(cur, value, f"{prefix}{key}.")
        elif isinstance(cur, Path) or key in ("home", "models_dir"):
            if not isinstance(value, str) or not value or "\x00" in value:
                raise _bad(f"{prefix}{key} must be a directory path (text), got {value!r}")
            setattr(obj, key, Path(value).expanduser())
        else:
            want = type(cur)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise _bad(f"{prefix}{key} must be {want.__name__}, got {value!r}")
            setattr(obj, key, value)


def load(path: str | os.PathLike | None = None, **overrides) -> Config:
    cfg = Config()
    if path:
        p = Path(path)
        if not p.is_file():
            raise E.EdgeError(E.FILE_NOT_EXIST, f"configuration file not found: {p}")
        try:
            data = tomllib.loads(p.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise _bad(f"{p} is not a UTF-8 text file: is it the right file?") from None
        except tomllib.TOMLDecodeError as e:
            raise _bad(f"{p}: {e}") from None
        except OSError as e:
            raise E.EdgeError(E.FILE_NOT_EXIST, f"configuration file {p} cannot be read: {e.strerror or e}") from None
        _fill(cfg, data, "")
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, Path(v) if k in ("home", "models_dir") else v)
    return cfg.validate()
