"""RGB silent liveness for the v3 API: ``liveness_control`` on detect / match / search /
multi-search / user add / update, and ``faceverify``.

The same anti-spoof models as the camera loop's ``rgb`` check (``liveness.rgb_models``, by
default MiniFASNetV2 at crop 2.7 and MiniFASNetV1SE at crop 4.0, their "real" probabilities
averaged), with the thresholds of ``edge/liveness/levels.py`` for the level the request names.
A request carries one image per face, so each face is judged on that one frame: the loop's
multi-frame mean has no counterpart here (faceverify's 3 or 8 images are combined as the seed
says, by their maximum).

The models are found as ``edge.liveness`` finds them: the cards named by ``liveness.rgb_models``
in the model pack. Installed while the service runs (``edge models import`` / ``fetch``), they
are picked up at the next request; absent or unloadable, every liveness request answers 216102
("service not support") and the reason is logged.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from .. import errors as E
from ..liveness import levels
from .envelope import ApiError

log = logging.getLogger("edge.api")

LICENSE_RECHECK = 60.0
# faceverify's `thresholds` keys (the seed's LOW / NORMAL / HIGH operating points, named by the
# false-rejection rate Baidu measured for its own model at each) -> the level whose threshold fills it
FRR_KEYS = {"frr_1e-4": "LOW", "frr_1e-3": "NORMAL", "frr_1e-2": "HIGH"}


def threshold(level: str) -> float:
    """The RGB score a face needs at ``level`` (NONE: 0, refuses nothing)."""
    return levels.THRESHOLDS["rgb"][level]


def thresholds() -> dict:
    """faceverify's ``thresholds`` block: each seed key filled with its level's RGB threshold."""
    return {key: threshold(level) for key, level in FRR_KEYS.items()}


class ApiLiveness:
    """The RGB liveness models, loaded on first use and reloaded when their cards change."""

    def __init__(self, cfg, clock=time.monotonic):
        self.cfg = cfg
        self.clock = clock
        self._lock = threading.Lock()
        self._model = None
        self._key = None            # the card files' state the model (or the failure) belongs to
        self._licensed = -float("inf")

    def _cards_state(self) -> tuple:
        from ..models import cards

        out = []
        for mid in self.cfg.liveness.rgb_models:
            try:
                st = cards.card_path(self.cfg.models_path, mid).stat()
                out.append((mid, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((mid, None))
        return tuple(out)

    def model(self):
        """The ``RgbLiveness`` of the installed models, or None when they are not installed."""
        key = self._cards_state()
        if key == self._key:
            return self._model
        with self._lock:
            if key != self._key:
                self._model = self._load(key)
                self._key = key
        return self._model

    def _load(self, key: tuple):
        from ..liveness.rgb import RgbLiveness
        from ..models.registry import Runtime

        if any(len(k) == 2 for k in key):        # a card is missing: not installed, nothing to report
            return None
        try:
            m = RgbLiveness(self.cfg.models_path, self.cfg.liveness.rgb_models, Runtime.from_config(self.cfg))
        except E.EdgeError as e:
            # installed but unusable (corrupt, tampered, wrong role): refused until the cards change
            log.error("liveness models unusable, liveness requests answer 216102: %s", e.message)
            return None
        log.info("liveness models loaded for the API: %s", ", ".join(self.cfg.liveness.rgb_models))
        return m

    def require(self):
        """The model, or 216102 without one; the licence must cover RGB liveness (else 6)."""
        m = self.model()
        if m is None:
            raise ApiError(216102, "liveness needs the anti-spoof models "
                           f"({', '.join(self.cfg.liveness.rgb_models)}), and they are not installed: "
                           "`edge models fetch minifasnet` or `edge models import DIR`, or send NONE")
        if self.clock() - self._licensed > LICENSE_RECHECK:
            from ..license import require

            try:
                require(self.cfg, "liveness", "rgb")
            except E.EdgeError as e:
                raise ApiError.from_edge(e) from None
            self._licensed = self.clock()
        return m

    def crops(self, image: np.ndarray, box) -> list[np.ndarray] | None:
        """The models' inputs for one face (kept with its face_token), or None without models."""
        m = self.model()
        if m is None:
            return None
        try:
            return m.crops(image, box)
        except E.EdgeError:
            return None          # a box the crop cannot use: judged as "no image" if ever asked

    def score(self, crops: list[np.ndarray]) -> float:
        """P(real) of one face from its crops, rounded as answered (and compared)."""
        return round(float(self.require().score_crops([crops])[0]), 6)
