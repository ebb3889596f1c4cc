"""The real-time loop on a moving scene of real photos.

The scene (640x480, 25 fps, 180 frames), composed from ../shared/faces/public:
- obama (obama_2) walks in from the left edge along y=150 and stops short of the centre;
- biden (biden_2) walks in from the right edge along y=340 and leaves at the left: his path
  crosses obama's and rose's columns below them;
- rose_leslie (rose_leslie_2) rises from the bottom edge to the upper right;
- lin_manuel_miranda (not enrolled) comes down from the top edge;
- alex_lacamoire (alex_lacamoire_3) walks in from the right along y=130 after rose has left.
Enrolled: the first photo of obama, biden, rose_leslie and alex_lacamoire.
"""
import datetime as dt

import numpy as np
import pytest

from edge import sources as S
from edge.pipeline import Pipeline
from edge_tools.scenes import Actor, Scene
from tests.conftest import PUBLIC, frames
from tests.helpers import SMALL_LIBRARY_THRESHOLD

ENROLLED = {"obama": "obama/obama_1.jpg", "biden": "biden/biden_1.jpg",
            "rose_leslie": "rose_leslie/rose_leslie_1.jpg", "alex_lacamoire": "alex_lacamoire/alex_lacamoire_1.png"}


def gate_actors():
    return [Actor(PUBLIC / "obama/obama_2.jpg", 0, 70, (-70, 150), (330, 150), name="obama"),
            Actor(PUBLIC / "biden/biden_2.jpg", 20, 110, (710, 340), (110, 340), name="biden"),
            Actor(PUBLIC / "rose_leslie/rose_leslie_2.jpg", 60, 140, (560, 570), (470, 190), name="rose_leslie"),
            Actor(PUBLIC / "lin_manuel_miranda/lin_manuel_miranda_1.png", 95, 165, (150, -80), (190, 240),
                  name="lin_manuel_miranda"),
            Actor(PUBLIC / "alex_lacamoire/alex_lacamoire_3.jpg", 120, 175, (720, 130), (420, 130),
                  name="alex_lacamoire")]


def enrol(engine, group="staff", **info):
    for user, rel in ENROLLED.items():
        engine.user_add(str(PUBLIC / rel), user, group, info.get(user))


def play(pipe, scene, on_frame=None):
    events = []
    for fr in frames(S.Replay(scene, fps=25)):
        events += pipe.process(fr)
        if on_frame:
            on_frame(fr)
    return events


def test_gate_scene_one_decision_per_person_and_stable_tracks(cfg, engine):
    enrol(engine)
    cfg.decision.groups = ["staff"]
    cfg.recognition.threshold = SMALL_LIBRARY_THRESHOLD   # 4 people (alex_lacamoire_1: tests/helpers.py)
    scene = Scene(gate_actors(), 180, find_face=lambda img: engine.analyzer.largest(img).box)
    pipe = Pipeline(cfg, engine)
    actor_tracks: dict[str, set] = {}
    track_actors: dict[int, set] = {}

    def trace(fr):
        for t in pipe.tracker.tracks.values():
            if t.last_ts != fr.ts:
                continue
            c = np.array([t.face.box[0] + t.face.box[2] / 2, t.face.box[1] + t.face.box[3] / 2])
            near = min(scene.actors, key=lambda a: np.linalg.norm(a.centre(fr.index) - c) if a.on(fr.index) else 1e9)
            assert near.on(fr.index) and np.linalg.norm(near.centre(fr.index) - c) < 0.3 * near.face_px, \
                f"frame {fr.index}: track {t.id} at {c} is on nobody"
            actor_tracks.setdefault(near.name, set()).add(t.id)
            track_actors.setdefault(t.id, set()).add(near.name)

    events = play(pipe, scene, trace)
    decisions = [e for e in events if e["type"] == "decision"]
    assert sorted(e["user_id"] for e in decisions) == sorted(ENROLLED), decisions
    assert all(e["action"] == "open" and e["score"] >= SMALL_LIBRARY_THRESHOLD for e in decisions)
    unknown = [e for e in events if e["type"] == "unknown"]
    assert len(unknown) == 1 and unknown[0]["best_score"] < SMALL_LIBRARY_THRESHOLD
    # the unknown event and each decision come from the track that follows that person
    by_track = {next(iter(v)): k for k, v in track_actors.items()}
    assert {a: track_actors[e["track_id"]] for e in decisions for a in [e["user_id"]]} == \
        {u: {u} for u in ENROLLED}
    assert track_actors[unknown[0]["track_id"]] == {"lin_manuel_miranda"}
    # one track per person for the whole pass, one person per track
    assert all(len(v) == 1 for v in actor_tracks.values()), actor_tracks
    assert all(len(v) == 1 for v in track_actors.values()), track_actors
    assert set(actor_tracks) == {a.name for a in scene.actors} and len(by_track) == 5
    # prompts while people were only half in view
    prompts = [e for e in events if e["type"] == "prompt"]
    assert prompts and all(e["reason"] and e["prompt"] for e in prompts)
    assert any(e["reason"] == "BeyondPreviewFrame" and e["code"] == 17 for e in prompts)


def test_cooldown_and_rotated_camera(cfg, engine):
    """A camera mounted sideways (frames rotated 90 degrees) is turned upright before detection
    (camera.rotate); the same person passing twice inside the cool-down opens once."""
    enrol(engine)
    cfg.camera.rotate = 90
    cfg.camera.display_mirror = True          # the screen shows the raw frame, mirrored
    cfg.decision.cooldown = 10.0
    actors = [Actor(PUBLIC / "obama/obama_2.jpg", 0, 40, (250, 240), (300, 240), name="obama"),
              Actor(PUBLIC / "obama/obama_2.jpg", 60, 100, (350, 240), (300, 240), name="obama")]
    scene = Scene(actors, 110, find_face=lambda img: engine.analyzer.largest(img).box)
    # the raw camera delivers the scene turned 90 degrees counter-clockwise
    raw = [S.orient(scene.frame(i), 270) for i in range(scene.frames)]
    events = play(Pipeline(cfg, engine), raw)
    d = [e for e in events if e["type"] == "decision"]
    assert [(e["user_id"], e["action"]) for e in d] == [("obama", "open"), ("obama", "cooldown")], d
    # boxes come in detection (upright) coordinates, and for the display as it is shown
    up = scene.actors[0].centre(d[0]["frame"])
    x, y, w, h = d[0]["box"]
    assert abs(x + w / 2 - up[0]) < 20 and abs(y + h / 2 - up[1]) < 20
    x, y, w, h = d[0]["display_box"]      # raw frame is 480 wide after the turn; mirrored
    assert abs(x + w / 2 - (480 - up[1])) < 20 and abs(y + h / 2 - (640 - up[0])) < 20
    cfg.camera.rotate = 0   # without the rotation, nobody is recognised in the sideways frames
    assert not [e for e in play(Pipeline(cfg, engine), raw) if e["type"] == "decision"]


def test_attendance_mode_records_and_csv(cfg, engine):
    enrol(engine)
    cfg.decision.mode = "attendance"
    clock = [dt.datetime(2026, 11, 25, 8, 30).timestamp()]    # local time: 08:30
    scene = Scene(gate_actors()[:2], 110, find_face=lambda img: engine.analyzer.largest(img).box)
    pipe = Pipeline(cfg, engine, wall_clock=lambda: clock[0])
    ev = [e for e in play(pipe, scene) if e["type"] == "decision"]
    assert sorted((e["user_id"], e["action"]) for e in ev) == [("biden", "check_in"), ("obama", "check_in")]
    clock[0] += 8 * 3600          # 16:30 the same day: check-out
    pipe2 = Pipeline(cfg, engine, attendance=pipe.attendance, wall_clock=lambda: clock[0])
    ev2 = [e for e in play(pipe2, scene) if e["type"] == "decision"]
    assert sorted(e["action"] for e in ev2) == ["check_out", "check_out"]
    rows = pipe.attendance.rows()
    assert len(rows) == 2 and all(r["check_in"] and r["check_out"] for r in rows)
    csv = pipe.attendance.csv().splitlines()
    assert csv[0].startswith("user_id,window,check_in,check_out") and len(csv) == 3
    pipe.close()


@pytest.mark.parametrize("probe,match", [("obama/obama_2.jpg", True), ("biden/biden_2.jpg", False)])
def test_verify_mode_against_id_photo(cfg, engine, probe, match):
    cfg.decision.mode = "verify"
    cfg.decision.id_photo = str(PUBLIC / "obama/obama_1.jpg")
    scene = Scene([Actor(PUBLIC / probe, 0, 60, (300, 220), (340, 220))], 70,
                  find_face=lambda img: engine.analyzer.largest(img).box)
    ev = [e for e in play(Pipeline(cfg, engine), scene) if e["type"] == "verify"]
    assert len(ev) == 1 and ev[0]["match"] is match, ev


class Verdict:
    """The liveness hook under test: answers every frame the same (the pipeline's handling of
    the answer is what is tested; liveness models come with their own tests)."""

    def __init__(self, passed, kind="rgb"):
        self.passed, self.kind, self.calls = passed, kind, 0

    def __call__(self, frame, face, history=None):
        from edge.liveness import LivenessResult

        self.calls += 1
        return LivenessResult(self.passed, 0.95 if self.passed else 0.02, self.kind)


def one_pass(engine, photo=PUBLIC / "obama/obama_2.jpg", frames=60):
    return Scene([Actor(photo, 0, frames - 5, (300, 220), (340, 220), name="p")], frames,
                 find_face=lambda img: engine.analyzer.largest(img).box)


def test_failed_liveness_gives_one_spoof_event_and_no_decision(cfg, engine):
    enrol(engine)
    cfg.liveness.attempts = 3
    hook = Verdict(False)
    ev = play(Pipeline(cfg, engine, liveness=hook), one_pass(engine))
    assert [e["type"] for e in ev if e["type"] != "prompt"] == ["spoof"]
    assert ev[-1]["liveness"]["score"] < 0.5 and hook.calls >= 3


def test_dynamic_library_refreshes_a_live_confident_match(cfg, engine):
    enrol(engine)
    cfg.dynamic_library.enabled = True
    cfg.dynamic_library.min_score = 85.0
    cfg.dynamic_library.max_faces = 1
    lib = engine.library
    before = [f["face_token"] for f in lib.get_user("obama")["face_list"]]
    # liveness off: never (a photo could become a template)
    ev = play(Pipeline(cfg, engine), one_pass(engine))
    assert "library_refresh" not in [e["type"] for e in ev]
    # live and confident: one dynamic face; a second pass replaces it (bounded per user)
    tokens = []
    for _ in range(2):
        ev = play(Pipeline(cfg, engine, liveness=Verdict(True)), one_pass(engine))
        ref = [e for e in ev if e["type"] == "library_refresh"]
        assert len(ref) == 1 and ref[0]["user_id"] == "obama" and ref[0]["score"] >= 85
        tokens.append(ref[0]["face_token"])
    after = [f["face_token"] for f in lib.get_user("obama")["face_list"]]
    assert after == before + [tokens[1]] and ref[0]["dropped"] == [tokens[0]]
    assert lib.count()["indexed"] == lib.count()["faces"]
    # still recognised, by the refreshed library too
    assert engine.identify(str(PUBLIC / "obama/obama_3.jpg"))["user_id"] == "obama"


def test_track_survives_a_short_miss(cfg, engine):
    """The person is hidden for 4 frames (160 ms, e.g. someone walks in front) and reappears on
    the same path: the same track, one decision."""
    enrol(engine)
    path = lambda i: (200 + 3 * i, 220)
    actors = [Actor(PUBLIC / "obama/obama_2.jpg", 0, 30, path(0), path(29), name="obama"),
              Actor(PUBLIC / "obama/obama_2.jpg", 34, 60, path(34), path(59), name="obama")]
    scene = Scene(actors, 60, find_face=lambda img: engine.analyzer.largest(img).box)
    pipe = Pipeline(cfg, engine)
    ids = set()

    def trace(fr):
        ids.update(t.id for t in pipe.tracker.tracks.values() if t.last_ts == fr.ts)
        if 30 <= fr.index < 34:
            assert all(t.last_ts != fr.ts for t in pipe.tracker.tracks.values())   # really unseen

    ev = play(pipe, scene, trace)
    assert ids == {1}
    assert [(e["type"], e["user_id"]) for e in ev if e["type"] == "decision"] == [("decision", "obama")]


def test_video_file_source(tmp_path, engine):
    """A video file replays through OpenCV (what `--source clip.avi` does)."""
    import cv2

    scene = Scene([Actor(PUBLIC / "biden/biden_2.jpg", 0, 30, (300, 240), (330, 240))], 30,
                  find_face=lambda img: engine.analyzer.largest(img).box)
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for img in scene:
        w.write(img)
    w.release()
    src = S.from_uri(str(path), paced=False)
    assert isinstance(src, S.Replay)
    got = list(frames(src))
    assert len(got) == 30 and got[0].image.shape == (480, 640, 3)
    assert engine.analyzer.largest(got[10].image).box[2] > 100      # the face survived encoding
