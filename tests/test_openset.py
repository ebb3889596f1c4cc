"""`edge eval openset` and `edge eval multiphoto` on a small real data set (60 lfw-dev people x 6
photos, 80 lfw-distractors; the full figures come from the commands, README). What is checked is
what must hold on any data: the counts behind every rate, rates that move the right way with
threshold and library size, one figure recomputed independently, and the plots."""
import json

import numpy as np

from edge import config as C
from edge.cli import main
from edge.faces import FaceAnalyzer
from edge_tools import embed_cache
from edge_tools import evaluate as ev
from edge_tools.eval_openset import flat_identities


def _run(args, home, models_dir, monkeypatch, capsys):
    monkeypatch.setenv("EDGE_MODELS_DIR", str(models_dir))
    assert main(["--json", "--home", str(home), "eval", *args, "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_openset_counts_rates_sizes_and_plots(lfw_subset, models_dir, monkeypatch, capsys, tmp_path):
    people, strangers, home = lfw_subset
    r = _run(["openset", str(people), "--strangers", str(strangers), "--plots", str(tmp_path)],
             home, models_dir, monkeypatch, capsys)
    d = r["data"]
    assert (d["enrolled_people"], d["genuine_probes"], d["enrolled_distractors"], d["stranger_probes"]) == (60, 300, 40, 40)
    assert d["largest_real_gallery"] == 100 and r["threshold"] == 80.0
    measured = [x for x in r["at_threshold"] if x["how"] == "measured"]
    estimated = [x for x in r["at_threshold"] if x["how"] == "estimated"]
    assert [x["gallery"] for x in measured] == [60, 80, 100] and [x["gallery"] for x in estimated] == [1000, 10000, 30000]
    for x in measured:
        c = x["counts"]
        assert x["fnir"] == round(c["missed"] / c["genuine"], 5) and x["fpir"] == round(c["strangers_matched"] / c["strangers"], 6)
    # the galleries are nested: more enrolled people, more rivals and more look-alikes
    for a, b in zip(measured, measured[1:]):
        assert b["counts"]["strangers_matched"] >= a["counts"]["strangers_matched"]
    assert [x["fpir"] for x in estimated] == sorted(x["fpir"] for x in estimated)
    assert estimated[-1]["fpir"] > 0.2                     # 30,000 users at the 1e-4 point: most strangers match
    rec = r["recommended"]
    assert [x["gallery"] for x in rec] == [100, 1000, 10000, 30000]
    assert [x["threshold"] for x in rec] == sorted(x["threshold"] for x in rec)
    assert all((x.get("estimate") or x)["fpir"] <= 0.01 for x in rec)
    # across thresholds: a lower threshold misses fewer people and lets more strangers in
    det = r["det"]["measured_100"]
    assert np.all(np.diff(det["fnir"]) >= 0) and np.all(np.diff(det["fpir"]) <= 0)
    # one figure recomputed from the templates directly: strangers matched at 80, 100 enrolled
    cfg = C.load(home=home, models_dir=models_dir)
    an = FaceAnalyzer(cfg)
    cache = embed_cache.default_path(cfg)
    t = ev.embed_all(an, ev.identities(people), quiet=True, cache=cache)
    s = ev.embed_all(an, flat_identities(strangers), quiet=True, cache=cache)
    first = ev.split(t.labels)[0]
    gallery = np.concatenate([t.units[first], s.units[0::2]])
    top = (s.units[1::2] @ gallery.T).max(1)
    assert int((an.embedder.score(top) >= 80).sum()) == measured[-1]["counts"]["strangers_matched"]
    for name in ("det", "fpir_by_size"):
        png = tmp_path / f"openset_{name}.png"
        assert r["plots"][name] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_several_enrolment_photos_find_more_people(lfw_subset, models_dir, monkeypatch, capsys):
    people, strangers, home = lfw_subset
    r = _run(["multiphoto", str(people), "--strangers", str(strangers)], home, models_dir, monkeypatch, capsys)
    assert r["people"] == 60 and r["probes"] == 60 and r["strangers"] == 80     # the 6th photo of each
    rows = {(x["photos"], x["rule"]): x for x in r["results"]}
    assert set(rows) == {(k, rule) for k in (1, 3, 5) for rule in ("best", "mean")}
    assert rows[1, "best"]["fnir"] == rows[1, "mean"]["fnir"]                    # one photo: the same thing
    rule = r["choice"]["rule"]
    assert rule in ("best", "mean")
    assert rows[5, rule]["fnir"] < rows[1, rule]["fnir"] and rows[5, rule]["rank1"] >= rows[1, rule]["rank1"]
    for x in r["results"]:
        c = x["counts"]
        assert x["fpir"] == round(c["strangers_matched"] / c["strangers"], 5)
