"""`edge bench api` on a small library runs to the end: it failed at once on main when API keys
got their QPS range checked (the bench's key asked for 1e6)."""
from edge_tools import bench_api


def test_bench_api_runs_and_finds_every_probe(cfg):
    r = bench_api.api(cfg, users=50, requests=6, clients=(1,), progress=False)
    rows = {row["path"]: row for row in r["results"]}
    assert set(rows) == {"python", "http"} and r["users"] == 50
    assert all(row["wrong_user"] == 0 for row in rows.values()), rows
    assert r["ratios"][0]["clients"] == 1 and r["ratios"][0]["median_http_over_python"] > 0
