import pytest

from edge.library import FaceLibrary


@pytest.fixture
def lib(request, tmp_path):
    """A face library in a fresh home for the test module's toy embedder (its MODEL and DIM)."""
    lb = FaceLibrary(tmp_path / "db" / "face.db", request.module.MODEL, request.module.DIM)
    yield lb
    lb.close()
