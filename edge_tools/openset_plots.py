"""The two pictures of `edge eval openset` (PNG, matplotlib: the optional ``plots`` extra):
the DET curve (FNIR against FPIR across thresholds, one line per gallery size) and FPIR against
gallery size at a few thresholds. Measured lines are solid, estimated ones dashed."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")                     # files only: no display on a terminal or in CI
import matplotlib.pyplot as plt           # noqa: E402
import numpy as np                        # noqa: E402

FLOOR = 1e-5                              # where a rate of 0 is drawn on a log axis


def det(path: Path, report: dict) -> Path:
    d = report["det"]
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sizes = sorted({int(k.split("_")[1]) for k in d if k != "thresholds"})
    for i, size in enumerate(sizes):
        col = colours[i % len(colours)]
        how = "measured" if f"measured_{size}" in d else "estimated"
        key = f"{how}_{size}"
        ax.plot(np.maximum(d[key]["fpir"], FLOOR), d[key]["fnir"], "-" if how == "measured" else "--", color=col,
                lw=1.6 if how == "measured" else 1.2, label=f"{size:,} enrolled ({how})")
        for r in report["at_threshold"] + report["recommended"]:
            if r["gallery"] == size:
                marker = "o" if r["threshold"] == report["threshold"] else "s"
                ax.plot(max(r["fpir"], FLOOR), r["fnir"], marker, color=col, ms=6, mfc="white")
    ax.set_xscale("log")
    ax.set_xlim(FLOOR, 1)
    ax.set_ylim(0, 1)
    ax.axvline(report["target_fpir"], color="grey", lw=0.8, ls=":")
    return _save(fig, ax, path, "FPIR: strangers matched to someone", "FNIR: enrolled people not recognised",
                 f"Open-set identification, {report['model']}\n"
                 f"o = threshold {report['threshold']:g}, s = threshold for FPIR {report['target_fpir']:.0%}",
                 "upper right")


def fpir_by_size(path: Path, o, report: dict) -> Path:
    sizes = np.unique(np.geomspace(10, 100_000, 60).astype(int))
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=110)
    thresholds = sorted({70.0, float(report["threshold"]), 90.0} | {r["threshold"] for r in report["recommended"]})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, thr in enumerate(thresholds):
        col = colours[i % len(colours)]
        c = o.scale.cosine(thr)
        est = [o.estimated(int(s), [c])["fpir"][0] for s in sizes]
        ax.plot(sizes, np.maximum(est, FLOOR), "--", color=col, lw=1.2, label=f"threshold {thr:g} (estimated)")
        real = o.real_sizes()
        meas = [o.measured(s, [c]) for s in real]
        fp = [m["strangers_matched"][0] / m["strangers"] for m in meas]
        ax.plot(real, np.maximum(fp, FLOOR), "o-", color=col, ms=5, lw=1.6, label=f"threshold {thr:g} (measured)")
    ax.axhline(report["target_fpir"], color="grey", lw=0.8, ls=":")
    ax.axvline(report["data"]["largest_real_gallery"], color="grey", lw=0.8, ls="-.")
    ax.text(report["data"]["largest_real_gallery"] * 1.05, 2 * FLOOR, "real faces end", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(FLOOR, 1)
    return _save(fig, ax, path, "enrolled users", "FPIR: strangers matched to someone",
                 f"Strangers matched as the library grows, {report['model']}\n"
                 f"(rates of 0 drawn at {FLOOR:g}; {report['data']['stranger_probes']} strangers measured)",
                 "lower right")


def _save(fig, ax, path: Path, xlabel: str, ylabel: str, title: str, legend: str) -> Path:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc=legend)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
