"""`edge models fetch minifasnet` against the loopback mirror of ../shared/models that
tests/test_models_fetch.py serves, and `edge models import` from a folder: both end in the two
converted, carded anti-spoof models; a wrong checksum or a cut connection leaves nothing."""
import cv2
import pytest

from edge import errors as E
from edge.models import catalogue, fetch, registry
from tests.conftest import SHARED
from tests.test_models_fetch import _leftovers, mirror  # noqa: F401  (the mirror fixture)


def _scores(md):
    img = cv2.imread(str(SHARED / "spoof" / "image_T1.jpg"))      # upright (OpenCV applies EXIF)
    box = [123.8, 147.3, 199.4, 199.4]
    return [registry.load(md, i, registry.Runtime(), "antispoof")(img, box) for i in ("minifasnet_v2", "minifasnet_v1se")]


def test_fetch_converts_both_models(tmp_path, mirror):  # noqa: F811
    md = tmp_path / "models"
    cards = fetch.fetch("minifasnet", md, mirror=f"{mirror}/ok", quiet=True)
    assert [c["id"] for c in cards] == ["minifasnet_v2", "minifasnet_v1se"]
    assert [c["source"]["sha256"] for c in cards] == [s["sha256"] for s in catalogue.CATALOGUE["minifasnet"]["files"]]
    assert all(c["licence"].startswith("Apache-2.0") and c["input"]["crop_scale"] in (2.7, 4.0) for c in cards)
    assert all(s > 0.95 for s in _scores(md))                          # image_T1 is a live face
    assert sorted(p.name for p in md.glob("*.part")) == []


@pytest.mark.parametrize("mode,code", [("bad", E.MODEL_IS_EMPTY), ("cut", E.NETWORK_ERROR)])
def test_a_bad_download_leaves_no_model(tmp_path, mirror, mode, code):  # noqa: F811
    md = tmp_path / "models"
    with pytest.raises(E.EdgeError) as e:
        fetch.fetch("minifasnet", md, mirror=f"{mirror}/{mode}", quiet=True)
    assert e.value.code == code
    assert _leftovers(md) == []


def test_import_from_a_folder(tmp_path):
    md = tmp_path / "models"
    cards = fetch.import_folder(SHARED / "models", md, ["minifasnet"])
    assert {c["id"] for c in cards} == {"minifasnet_v2", "minifasnet_v1se"}
    assert all(s > 0.95 for s in _scores(md))
