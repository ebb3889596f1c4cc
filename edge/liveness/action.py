"""Action liveness: a random challenge of N actions, each measured from FaceMesh.

The actions are the offline SDK's ``action_live.json`` set: blink, open mouth, turn left / right,
look up / down, nod, shake. Every measure is a *change* against a reference, turned into a
confidence 0-1 that is compared with ``liveness.action.threshold`` (0.5, every ``*_threshold``
in action_live.json):

- eyes shut: how far each eye's patch (cut square to the eye line, sized by the eye distance,
  grey, contrast-normalised) has moved away from its reference — the patch a few frames back
  (``EYE_LAG``), held once the eyes start to change — 1 - normalised correlation, mean of both eyes; 1 at ``EYE_CHANGE_FULL``. FaceMesh's lid points barely move when eyes
  close (on photos edited to closed eyes the lid-gap ratio fell 0.31 -> 0.28), the eye's
  appearance does: on 7 public photos in 640x480 frames, closing the eyes by an edit changed
  them by 0.33-1.15; camera noise on a still (1 px shake, 3 % flicker, sigma 2) by at most 0.26
  between frames 3 apart, open or closed — so 0.5 confidence sits at 0.30;
- mouth open: the lip gap / mouth width (FaceMesh 13-14 / 61-291) above its lowest value in
  the step, 1 at ``MOUTH_DELTA_FULL``;
- head turned / raised / lowered: yaw or pitch away from the pose at the challenge's start, 1 at
  ``HEAD_FULL`` degrees, so 0.5 is 15 degrees (the offline SDK's frontal limit).

An action is a change of state, never a state alone: blink = eyes as at the start, shut, as at
the start again; open mouth = the gap grows; turn / look = turned from where the head was; nod =
lowered, then back; shake = turned one way, then past the start to the other. A still photo
therefore never completes a blink or a mouth opening. Each action has ``timeout`` seconds. The
face's template is taken at the start and after every action; a face that no longer scores
``identity_score`` against the first (another person stepped in, a photo was swapped) fails the
challenge.

What it does not catch: a video replay of the enrolled person doing the actions in the asked
order (the order is random, so a prepared video rarely fits); a photo turned or tilted in front
of the camera for the head actions (FaceMesh sees the turn: ask for blink or mouth too); a
photo with the eyes cut out worn over a face. Combine it with silent liveness
("rgb+action"), as the seed says of action liveness.

Prompts carry the capture SDK's LivenessRemindCode numbers (IDLFaceLivenessManager.h); the
prompt text follows the seed's text, not its enum names (20 LiveYawRight reads "turn your head
left"). Nod and a changed face have no code there: 103 and 104 are ours.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import cv2
import numpy as np

EYE_CHANGE_FULL = 0.6    # eye-patch change (1 - NCC) at confidence 1 (0.5 at 0.30)
MOUTH_DELTA_FULL = 0.3   # lip-gap ratio increase at confidence 1 (0.5 at +0.15)
HEAD_FULL = 30.0         # degrees of yaw / pitch change at confidence 1 (0.5 at 15 degrees)
EYE_PATCH = (24, 12)     # pixels of each eye patch (width, height)
EYE_LAG = 3              # frames the eyes' reference trails the face until they change

# action -> (LivenessRemindCode, its name in the capture SDK, prompt)
REMIND = {
    "blink": (18, "LiveEye", "blink"),
    "open_mouth": (19, "LiveMouth", "open your mouth wide"),
    "turn_left": (20, "LiveYawRight", "turn your head to the left"),
    "turn_right": (21, "LiveYawLeft", "turn your head to the right"),
    "look_up": (22, "LivePitchUp", "raise your head"),
    "look_down": (23, "LivePitchDown", "lower your head"),
    "shake": (24, "LiveYaw", "shake your head"),
    "nod": (103, "LivePitch", "nod"),
}
FINISHED = (25, "SingleLivenessFinished", "well done")
TIMEOUT = (34, "Timeout", "time is up")
CONDITION_MEET = (35, "ConditionMeet", "done")
IDENTITY = (104, "IdentityChanged", "one person at a time")


def eye_patches(image: np.ndarray, face) -> np.ndarray:
    """Both eyes' patches, cut square to the eye line and sized by the eye distance (so the
    person moving closer or tilting the head does not change them), contrast-normalised."""
    e0, e1 = (np.asarray(p, np.float64) for p in face.landmarks5[:2])
    d = np.linalg.norm(e1 - e0) + 1e-9
    angle = np.degrees(np.arctan2(e1[1] - e0[1], e1[0] - e0[0]))
    k = EYE_PATCH[0] / (0.6 * d)                # a patch is 0.6 eye distances wide
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    out = []
    for c in (e0, e1):
        M = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle, k)
        M[:, 2] += np.array(EYE_PATCH, np.float64) / 2 - c
        p = cv2.warpAffine(grey, M, EYE_PATCH, flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        out.append((p - p.mean()) / (p.std() + 1.0))
    return np.stack(out)


@dataclass
class Measure:
    """What one frame's face says about the actions."""
    eyes: np.ndarray
    yaw: float
    pitch: float
    mouth: float


def measure(image: np.ndarray, face, mirrored: bool = False) -> Measure:
    return Measure(eye_patches(image, face), face.pose["yaw"] * (-1 if mirrored else 1), face.pose["pitch"],
                   face.openness["mouth"])


def confidences(now: Measure, neutral: Measure, eyes_ref: np.ndarray, mouth_min: float) -> dict[str, float]:
    """Per-state confidences 0-1 of one frame: head movements against the neutral pose (the
    challenge's first frame), the eyes against ``eyes_ref``, the lip gap against its lowest
    value in the step. ``left``/``right`` are the subject's own: on an unmirrored camera the
    subject's left is the image's right (yaw > 0)."""
    c = lambda v: float(np.clip(v, 0.0, 1.0))
    change = float(np.mean([1.0 - float((a * b).mean()) for a, b in zip(now.eyes, eyes_ref)]))
    dyaw, dpitch = now.yaw - neutral.yaw, now.pitch - neutral.pitch
    return {"eyes_shut": c(change / EYE_CHANGE_FULL),
            "mouth_open": c((now.mouth - mouth_min) / MOUTH_DELTA_FULL),
            "left": c(dyaw / HEAD_FULL), "right": c(-dyaw / HEAD_FULL),
            "up": c(-dpitch / HEAD_FULL), "down": c(dpitch / HEAD_FULL)}


# each action: the states it must pass through, in order; a state is (confidence key, True =
# at or above the threshold / False = below it)
STEPS = {
    "blink": [("eyes_shut", False), ("eyes_shut", True), ("eyes_shut", False)],
    "open_mouth": [("mouth_open", False), ("mouth_open", True)],
    "turn_left": [("left", False), ("left", True)],
    "turn_right": [("right", False), ("right", True)],
    "look_up": [("up", False), ("up", True)],
    "look_down": [("down", False), ("down", True)],
    "nod": [("down", False), ("down", True), ("down", False)],
}
SHAKE = ([("left", False), ("left", True), ("right", True)], [("right", False), ("right", True), ("left", True)])


@dataclass
class Challenge:
    actions: list[str]
    started: float | None = None
    step_started: float = 0.0
    index: int = 0                       # current action
    neutral: Measure | None = None       # the face at the start: head movements count from here
    eye_ring: list = field(default_factory=list)   # the last EYE_LAG frames' eye patches
    eye_frozen: np.ndarray | None = None  # the eyes' reference from the first shut frame on
    mouth_min: float = 0.0
    progress: dict = field(default_factory=dict)   # per path of the current action: states reached
    status: str = "running"              # running | passed | failed
    reason: str = ""
    first_unit: np.ndarray | None = None
    identity: list[float] = field(default_factory=list)

    @property
    def current(self) -> str | None:
        return self.actions[self.index] if self.index < len(self.actions) else None

    def to_dict(self) -> dict:
        return {"status": self.status, "actions": list(self.actions), "done": self.index,
                "current": self.current if self.status == "running" else None, "reason": self.reason,
                "identity_scores": [round(s, 2) for s in self.identity]}


def _prompt(code: tuple, action: str | None = None) -> dict:
    n, name, text = code
    return {"code": n, "reason": name, "prompt": text, **({"action": action} if action else {})}


class ActionLiveness:
    def __init__(self, cfg, analyzer, rng: random.Random | None = None):
        self.cfg = cfg
        self.analyzer = analyzer
        # unpredictable order by default: a prepared replay must not know it
        self.rng = rng or random.SystemRandom()

    def new_challenge(self) -> Challenge:
        return Challenge(self.rng.sample(list(self.cfg.actions), min(self.cfg.count, len(self.cfg.actions))))

    def _identity_ok(self, ch: Challenge, image, face) -> bool:
        unit = self.analyzer.template(image, face).unit
        if ch.first_unit is None:
            ch.first_unit = unit
            return True
        score = float(self.analyzer.embedder.score(float(np.dot(unit, ch.first_unit))))
        ch.identity.append(score)
        return score >= self.cfg.identity_score

    def observe(self, frame, face, history: dict, mirrored: bool = False) -> list[dict]:
        """Feed one tracked frame (``history`` is the track's: it holds the challenge); returns the
        prompts it causes: the first action, a finished one and the next, a timeout, the end."""
        ch = history.get("action")
        if ch is None:
            ch = history["action"] = self.new_challenge()
        if ch.status != "running":
            return []
        ts = frame.ts
        now = measure(frame.image, face, mirrored)
        if ch.started is None:
            ch.started = ch.step_started = ts
            ch.neutral = now
            self._new_step(ch, now)
            self._identity_ok(ch, frame.image, face)
            return [_prompt(REMIND[ch.current], ch.current)]
        if ts - ch.step_started > self.cfg.timeout:
            ch.status, ch.reason = "failed", f"{ch.current}: not done within {self.cfg.timeout:g} s"
            return [_prompt(TIMEOUT, ch.current)]
        ch.mouth_min = min(ch.mouth_min, now.mouth)
        eyes_ref = ch.eye_frozen if ch.eye_frozen is not None else ch.eye_ring[0]
        conf = confidences(now, ch.neutral, eyes_ref, ch.mouth_min)
        # until the eyes change, their reference trails the face by a few frames, so a slow head
        # movement is not a blink; from the first changed frame on it stays put
        if ch.eye_frozen is None and conf["eyes_shut"] >= self.cfg.threshold:
            ch.eye_frozen = eyes_ref
        ch.eye_ring = (ch.eye_ring + [now.eyes])[-EYE_LAG:]
        if not self._advance(ch, conf):
            return []
        if not self._identity_ok(ch, frame.image, face):
            ch.status, ch.reason = "failed", "the face changed during the challenge"
            return [_prompt(IDENTITY, ch.current)]
        done = ch.current
        ch.index += 1
        ch.step_started = ts
        self._new_step(ch, now)
        if ch.current is None:
            ch.status = "passed"
            return [_prompt(CONDITION_MEET)]
        return [_prompt(FINISHED, done), _prompt(REMIND[ch.current], ch.current)]

    @staticmethod
    def _new_step(ch: Challenge, now: Measure):
        ch.progress, ch.eye_ring, ch.eye_frozen, ch.mouth_min = {}, [now.eyes], None, now.mouth

    def _advance(self, ch: Challenge, conf: dict) -> bool:
        """Move the current action's state machine(s) on; True when one path is complete."""
        thr = self.cfg.threshold
        paths = SHAKE if ch.current == "shake" else (STEPS[ch.current],)
        for i, path in enumerate(paths):
            k = ch.progress.get(i, 0)
            key, high = path[k]
            if (conf[key] >= thr) == high:
                k += 1
                ch.progress[i] = k
                if k == len(path):
                    return True
        return False

    def result(self, history: dict) -> dict:
        ch = history.get("action")
        return ch.to_dict() if ch is not None else {"status": "running", "done": 0, "current": None}
