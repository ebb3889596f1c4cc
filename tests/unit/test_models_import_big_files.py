"""`edge models import /media/usb` recognises model files by their sha256, whatever they are
called; it hashed every file on the stick, videos included, for minutes without a word. Files
bigger than any published model are not read."""
import os

import pytest

from edge import errors as E
from edge.models import cards, fetch


def test_files_bigger_than_any_model_are_not_hashed(tmp_path, monkeypatch):
    stick = tmp_path / "usb"
    stick.mkdir()
    with open(stick / "holiday.mp4", "wb") as f:          # sparse: 1 GB without writing it
        f.truncate(1 << 30)
    (stick / "notes.txt").write_text("models are in the other folder\n")
    hashed = []
    real = cards.sha256_file
    monkeypatch.setattr(cards, "sha256_file", lambda p: hashed.append(os.path.basename(p)) or real(p))
    with pytest.raises(E.EdgeError) as e:
        fetch.import_folder(stick, tmp_path / "models")
    assert e.value.code == E.FILE_NOT_EXIST and "no known model files" in e.value.message
    assert hashed == ["notes.txt"]
