"""Weighted NMS with a zero-size candidate (int8 detectors can regress one): no NaN, no loss."""
import numpy as np

from edge.detect import weighted_nms


def test_zero_size_box_stands_for_itself():
    boxes = np.array([[0.5, 0.5, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3]])
    kps = np.zeros((2, 6, 2))
    out = weighted_nms(boxes, kps, np.array([0.9, 0.8]), 0.3)
    assert len(out) == 2
    assert all(np.isfinite(b).all() and np.isfinite(k).all() for b, k, _ in out)
