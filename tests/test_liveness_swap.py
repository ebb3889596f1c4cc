"""A liveness bypass found by trying: an unenrolled live person and a print of an enrolled
person's photo take turns in front of the camera, in one track, switching after each decision
attempt. The print alone is refused (RGB 0.34 at NORMAL's 0.5), but a track's liveness is the mean
of its last two judged frames, and the live person's 0.94 lifted it to 0.64: the print's votes
added up and the gate opened for the enrolled person after 6 s. Now a judged frame that is
another face than the one before it (liveness.identity_score) starts the mean and the votes again.

The scene is built from real photos (tests/test_liveness_gate.py's construction): the live person
is lin_manuel_miranda_1 as a head cut-out, the attack the whole published print (image_F1,
EXIF-upright), its face at the same place, with the same relaxed quality gate as that test."""
import numpy as np
import pytest

from edge import sources as S
from edge.pipeline import Pipeline
from edge_tools.scenes import Actor, Scene
from tests.conftest import PUBLIC, SHARED
from tests.helpers import SMALL_LIBRARY_THRESHOLD


@pytest.mark.parametrize("level", ["NORMAL", "LOW"])
def test_a_print_taking_turns_with_a_live_face_never_opens(cfg, engine, antispoof_models, level):
    attack = SHARED / "spoof" / "image_F1.jpg"
    cfg.enrol.max_yaw = 35.0                           # the print's face is turned 30 degrees
    engine.user_add(str(attack), "victim", "staff")
    cfg.decision.groups = ["staff"]
    cfg.recognition.threshold = SMALL_LIBRARY_THRESHOLD
    cfg.quality.check_occlusion = False
    cfg.quality.max_yaw, cfg.quality.max_roll = 35.0, 20.0
    cfg.liveness.mode, cfg.liveness.level = "rgb", level
    find = lambda img: engine.analyzer.largest(img).box  # noqa: E731
    at = (320, 220)
    shots = {"live": Scene([Actor(PUBLIC / "lin_manuel_miranda/lin_manuel_miranda_1.png", 0, 1, at, at)], 1,
                           find_face=find).frame(0),
             "print": Scene([Actor(attack, 0, 1, at, at, face_px=160, shape="whole")], 1, find_face=find).frame(0)}
    pipe, showing, last, events, turns = Pipeline(cfg, engine), "live", None, [], {"live": 0, "print": 0}
    rng = np.random.default_rng(0)
    for i in range(25 * 12):                           # 12 s: the gate opened at 6.1 s before
        img = np.clip(shots[showing] + rng.normal(0, 2, shots[showing].shape), 0, 255).astype(np.uint8)
        events += [e for e in pipe.process(S.Frame(img, i / 25, i)) if e["type"] != "prompt"]
        st = next(iter(pipe.states.values()), None)
        if st is not None and st.last_attempt != last:
            last = st.last_attempt
            turns[showing] += 1
            if any(e["type"] == "unknown" for e in events):   # found unknown: now the print, then back
                showing = "print" if showing == "live" else "live"
    assert turns["print"] >= 2 and turns["live"] >= 3, turns      # the attack was played out
    assert not [e for e in events if e["type"] == "decision"], events
    assert [e["type"] for e in events][:1] == ["unknown"]          # the live person: not enrolled
