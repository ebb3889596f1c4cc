"""RGB silent liveness: one or more anti-spoof models on the face, their "real" probabilities
averaged (Silent-Face-Anti-Spoofing averages MiniFASNetV2 at crop 2.7 and MiniFASNetV1SE at
crop 4.0). The face must be upright in the image (EXIF orientation and camera rotation applied
first): read sideways, a photo attack scores "real".
"""
from __future__ import annotations

import numpy as np

from .. import errors as E
from ..models import registry


class RgbLiveness:
    part = "rgb"

    def __init__(self, models_dir, model_ids, runtime: registry.Runtime):
        self.models = []
        for mid in model_ids:
            try:
                self.models.append(registry.load(models_dir, mid, runtime, "antispoof"))
            except E.EdgeError as e:
                if e.code != E.MODEL_IS_EMPTY:
                    raise
                raise E.EdgeError(E.MODEL_IS_EMPTY, f"{e.message} — the anti-spoof models are installed with "
                                  "`edge models fetch minifasnet` (or `edge models import DIR` on a device "
                                  "without network)") from None

    def crops(self, image: np.ndarray, box) -> list[np.ndarray]:
        """Each model's input for the face ``box``: what ``score_crops`` needs, so a caller that
        keeps no image (the HTTP API's face_tokens) can still judge the face later."""
        return [m.crop(image, box) for m in self.models]

    def score_crops(self, faces: list[list[np.ndarray]]) -> np.ndarray:
        """P(real) of each face given as its ``crops``, one batched run per model."""
        per_model = [m.scores([c[i] for c in faces]) for i, m in enumerate(self.models)]
        return np.mean(per_model, axis=0)

    def score_many(self, items: list[tuple[np.ndarray, list[float]]]) -> np.ndarray:
        """P(real) of each (image, face box), one batched run per model."""
        return self.score_crops([self.crops(img, box) for img, box in items])

    def __call__(self, image: np.ndarray, face, paired=None) -> tuple[float, dict]:
        return float(self.score_many([(image, face.box)])[0]), {}
