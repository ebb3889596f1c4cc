from pathlib import Path

import pytest

from edge import config as C

SHARED = Path(__file__).resolve().parents[2] / "shared"
PUBLIC = SHARED / "faces" / "public"
LFW = SHARED / "faces" / "lfw-dev"
DISTRACTORS = SHARED / "faces" / "lfw-distractors"
IDENTITIES = ["alex_lacamoire", "biden", "kit_harington", "lin_manuel_miranda", "obama", "rose_leslie"]


UNIT = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(config, items):
    """The fast tier (tests/unit) needs no models and no photos; every other test runs on the real
    photos in ../shared, and a run that includes them without ../shared is an error, not a skip."""
    real = [i for i in items if UNIT not in Path(str(i.fspath)).resolve().parents]
    if real and not PUBLIC.is_dir():
        raise pytest.UsageError(f"the real test fixtures are missing: expected {SHARED} beside the checkout "
                                "(`make test-fast` runs the tests that need none)")


@pytest.fixture(scope="session")
def models_dir():
    """The model pack `edge models build` made (built here if absent, as the README's command would)."""
    d = C.edge_home() / "models"
    if not (d / "dlib_resnet.json").is_file():
        from edge.models.build import build

        build(d, quiet=True)
    return d


@pytest.fixture(scope="session")
def lfw_subset(tmp_path_factory):
    """A small open-set data set for the evaluation tests: 60 lfw-dev people x 6 photos and 80
    lfw-distractors, linked (not copied) into a temporary folder, and an EDGE_HOME whose
    evaluation cache those tests share, so each photo is embedded once per run."""
    root = tmp_path_factory.mktemp("lfw_subset")
    people, strangers = root / "people", root / "strangers"
    for person in sorted(p for p in LFW.iterdir() if p.is_dir())[:60]:
        (people / person.name).mkdir(parents=True)
        for f in sorted(person.iterdir())[:6]:
            (people / person.name / f.name).symlink_to(f)
    strangers.mkdir()
    for f in sorted(DISTRACTORS.iterdir())[:80]:
        (strangers / f.name).symlink_to(f)
    return people, strangers, root / "home"


@pytest.fixture(scope="session")
def antispoof_models(models_dir):
    """The MiniFASNet anti-spoof models, installed from ../shared/models as `edge models import`
    does on an air-gapped device (converted on the first run)."""
    if not (models_dir / "minifasnet_v1se.json").is_file():
        from edge.models.fetch import import_folder

        import_folder(SHARED / "models", models_dir, ["minifasnet"])
    return models_dir


@pytest.fixture
def cfg(tmp_path, models_dir):
    return C.load(home=tmp_path / "home", models_dir=models_dir)


@pytest.fixture(scope="session")
def analyzer(models_dir, tmp_path_factory):
    from edge.faces import FaceAnalyzer

    return FaceAnalyzer(C.load(home=tmp_path_factory.mktemp("an"), models_dir=models_dir))


@pytest.fixture
def engine(cfg):
    from edge.engine import FaceEngine

    e = FaceEngine(cfg)
    yield e
    e.close()


def frames(src):
    """Open a frame source and yield its frames until it ends (None = no frame yet: skipped)."""
    from edge.sources import EndOfStream

    src.open()
    while True:
        try:
            f = src.read()
        except EndOfStream:
            return
        if f is not None:
            yield f


def photos(identity):
    return sorted((PUBLIC / identity).iterdir())
