"""Action liveness on frame sequences built from real photos. Each sequence is a photo placed in
a 640x480 frame (the test scenes' head cut-out), repeated with synthetic sensor noise (+-1 px
shake, +-3 % flicker, sigma 2 noise), and changed as stated:

- blink: the eyes closed by an edit of the same photo for 3 frames (`close_eyes`: the skin above
  each upper lid stretched down over the eye along FaceMesh's lid contours, a lash line drawn);
- open mouth: the jaw dropped by an edit (`open_mouth`: FaceMesh points below the lips moved down
  0.45 mouth widths, the face warped triangle by triangle, the gap filled dark);
- head actions: another real photo of the same person in that pose (lfw-dev, Naomi Watts:
  0004 frontal, 0012 turned to her left, 0014 to her right, 0003 raised, 0017 lowered);
- a swapped person: Norah Jones (lfw-dev 0005) turned, in place of Naomi Watts.
"""
import random

import pytest

from edge import sources as S
from edge.config import ACTIONS
from edge.detect import Detection
from edge.liveness.action import REMIND, ActionLiveness
from edge.pipeline import Pipeline
from edge_tools import liveness_data as D
from edge_tools.scenes import Actor, Scene
from tests.conftest import LFW, PUBLIC, frames

import numpy as np

NAOMI = {"frontal": "0004", "left": "0012", "right": "0014", "up": "0003", "down": "0017"}


class Fixed:
    """The challenge's "random" order, fixed by the test."""

    def __init__(self, actions):
        self.actions = actions

    def sample(self, population, k):
        return list(self.actions)


@pytest.fixture(scope="module")
def photos(analyzer):
    def placed(path):
        return Scene([Actor(path, 0, 1, (320, 220), (320, 220), face_px=150)], 1,
                     find_face=lambda im: analyzer.largest(im).box).frame(0)

    def points(img):
        f = analyzer.largest(img)
        return analyzer.mesh(img, Detection(np.asarray(f.box, np.float64), f.score, np.asarray(f.landmarks5)[:2])).points

    out = {k: placed(LFW / "Naomi_Watts" / f"Naomi_Watts_{v}.jpg") for k, v in NAOMI.items()}
    out["eyes_shut"] = D.close_eyes(out["frontal"], points(out["frontal"]))
    out["mouth_open"] = D.open_mouth(out["frontal"], points(out["frontal"]))
    out["other_person_left"] = placed(LFW / "Norah_Jones" / "Norah_Jones_0005.jpg")
    for name in ("biden/biden_1.jpg", "rose_leslie/rose_leslie_1.jpg"):
        img = placed(PUBLIC / name)
        out[name] = img
        out[name + " eyes_shut"] = D.close_eyes(img, points(img))
        out[name + " mouth_open"] = D.open_mouth(img, points(img))
    return out


SEGMENTS = {"blink": [("eyes_shut", 3), ("frontal", 4)], "open_mouth": [("mouth_open", 5), ("frontal", 4)],
            "turn_left": [("left", 4), ("frontal", 4)], "turn_right": [("right", 4), ("frontal", 4)],
            "look_up": [("up", 4), ("frontal", 4)], "look_down": [("down", 4), ("frontal", 4)],
            "nod": [("down", 4), ("frontal", 4)], "shake": [("left", 4), ("right", 4), ("frontal", 4)]}


def sequence(photos, parts):
    out = []
    for key, n in parts:
        out += D.still_frames(photos[key], n, seed=len(out))
    return out


def run(analyzer, cfg, actions, seq, timeout=10.0):
    from edge.sources import Frame

    cfg.liveness.action.timeout = timeout
    act = ActionLiveness(cfg.liveness.action, analyzer, rng=Fixed(actions))
    history, prompts = {}, []
    for i, img in enumerate(seq):
        prompts += act.observe(Frame(img, i / 25.0, i), analyzer.largest(img), history)
    return act.result(history), prompts


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_passes_when_done_and_fails_when_not(analyzer, cfg, photos, action):
    state, prompts = run(analyzer, cfg, [action], sequence(photos, [("frontal", 6)] + SEGMENTS[action]))
    assert state["status"] == "passed", state
    code = REMIND[action][0]
    assert [p["code"] for p in prompts] == [code, 35] and prompts[0]["action"] == action
    assert min(state["identity_scores"]) >= 80
    # the same person holding still: a timeout (34), never a pass
    state, prompts = run(analyzer, cfg, [action], sequence(photos, [("frontal", 16)]), timeout=0.5)
    assert state["status"] == "failed" and "not done within" in state["reason"]
    assert [p["code"] for p in prompts] == [code, 34]


@pytest.mark.parametrize("who", ["biden/biden_1.jpg", "rose_leslie/rose_leslie_1.jpg"])
def test_blink_and_mouth_on_public_photos_and_a_replayed_still_never_blinks(analyzer, cfg, photos, who):
    blink = sequence(photos, [(who, 8), (who + " eyes_shut", 3), (who, 8)])
    assert run(analyzer, cfg, ["blink"], blink)[0]["status"] == "passed"
    mouth = sequence(photos, [(who, 8), (who + " mouth_open", 6)])
    assert run(analyzer, cfg, ["open_mouth"], mouth)[0]["status"] == "passed"
    still = sequence(photos, [(who, 40)])            # a replayed photo: 1.6 s of camera noise only
    state, _ = run(analyzer, cfg, ["blink"], still, timeout=1.5)
    assert state["status"] == "failed"
    # eyes closed in every frame (a photo of a blink) is no blink either
    shut = sequence(photos, [(who + " eyes_shut", 40)])
    assert run(analyzer, cfg, ["blink"], shut, timeout=1.5)[0]["status"] == "failed"


def test_a_random_challenge_of_three_and_a_person_swapped_midway(analyzer, cfg, photos):
    actions = random.Random(11).sample(list(ACTIONS), 3)
    parts = [("frontal", 6)]
    for a in actions:
        parts += SEGMENTS[a]
    state, prompts = run(analyzer, cfg, actions, sequence(photos, parts))
    assert state["status"] == "passed" and state["done"] == 3, state
    codes = [p["code"] for p in prompts]
    assert codes == [REMIND[actions[0]][0], 25, REMIND[actions[1]][0], 25, REMIND[actions[2]][0], 35]
    # the first action done by Naomi Watts, the second by another person: refused
    swapped = [("frontal", 6)] + SEGMENTS["blink"] + [("frontal", 2), ("other_person_left", 4)]
    state, prompts = run(analyzer, cfg, ["blink", "turn_left"], sequence(photos, swapped))
    assert state["status"] == "failed" and "changed" in state["reason"] and state["done"] == 1
    assert prompts[-1]["code"] == 104 and min(state["identity_scores"]) < 80


def test_action_challenge_in_the_camera_loop(cfg, engine, photos):
    """mode "action": prompts go out as events; the gate opens only after the challenge, and a
    still photo gets `spoof` once its challenge has timed out."""
    engine.user_add(str(LFW / "Naomi_Watts" / "Naomi_Watts_0010.jpg"), "naomi", "staff")
    cfg.liveness.mode = "action"
    cfg.liveness.action.count = 1
    cfg.liveness.action.actions = ["turn_left"]
    cfg.liveness.action.timeout = 1.0
    live = sequence(photos, [("frontal", 8), ("left", 4), ("frontal", 8)])
    still = sequence(photos, [("frontal", 60)])
    for seq, want in ((live, ["decision"]), (still, ["spoof"])):
        pipe = Pipeline(cfg, engine)
        ev = [e for fr in frames(S.Replay(seq, fps=25)) for e in pipe.process(fr)]
        action_prompts = [e for e in ev if e["type"] == "prompt" and e.get("liveness") == "action"]
        assert action_prompts[0]["code"] == 20 and action_prompts[0]["prompt"] == "turn your head to the left"
        assert [e["type"] for e in ev if e["type"] not in ("prompt",)] == want, ev
        if want == ["decision"]:
            d = next(e for e in ev if e["type"] == "decision")
            assert d["user_id"] == "naomi" and d["action"] == "open"
            assert d["frame"] > next(e["frame"] for e in action_prompts if e["code"] == 35)
