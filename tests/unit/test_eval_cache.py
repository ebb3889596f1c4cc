"""The evaluation template cache: what it keeps comes back, and a damaged cache or plot folder
costs the evaluation nothing (it goes on uncached, the figures are printed all the same)."""
import logging

import numpy as np

from edge_tools.embed_cache import Found, TemplateCache
from edge_tools.eval_openset import _plots


def test_a_kept_template_comes_back_and_a_damaged_row_is_not_used(tmp_path):
    c = TemplateCache(tmp_path / "c.db")
    v = np.arange(4, dtype=np.float32)
    c.put("k", "sha1", Found(v, [1.0, 2.0, 3.0, 4.0], 2))
    c.put("k", "sha2", Found(None, None, 0, "no face"))
    c.db.execute("INSERT OR REPLACE INTO t VALUES ('k', 'bad', 1, ?, NULL, 1, '')",
                 (np.array([np.nan, 1], np.float32).tobytes(),))
    c.close()
    c = TemplateCache(tmp_path / "c.db")
    got = c.get("k", "sha1")
    assert np.array_equal(got.vector, v) and got.box == [1.0, 2.0, 3.0, 4.0] and got.faces == 2
    assert c.get("k", "sha2").vector is None and c.get("k", "sha2").reason == "no face"
    assert c.get("k", "bad") is None and c.get("other-pipeline", "sha1") is None
    c.close()


def test_a_corrupt_cache_file_is_dropped_with_a_warning(tmp_path, caplog):
    p = tmp_path / "c.db"
    p.write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="edge.eval"):
        c = TemplateCache(p)
        assert c.get("k", "s") is None
        c.put("k", "s", Found(np.ones(3, np.float32), None, 1))
        c.close()
    assert c.db is None and "going on without it" in caplog.text


def test_plots_that_cannot_be_written_are_reported_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = _plots(None, {}, blocker / "plots")
    assert "cannot write the plots" in out.get("error", out.get("missing", ""))
