"""`edge demo`: enrol two people and recognise them in other photos, no camera needed.

The photos are face_recognition's MIT-licensed test images, taken from that package's source
release on PyPI (the only network a device install can count on), or any folder given.
"""
from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

from edge import errors as E
from edge.config import Config

DEMO_PACKAGE = ("face_recognition", "1.3.0")
ENROL = {"obama": "obama.jpg", "biden": "biden.jpg"}


def demo_photos(cfg: Config) -> Path:
    dest = cfg.home / "demo" / "photos"
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    cache = cfg.home / "demo" / ".cache"
    import subprocess
    import sys

    cache.mkdir(parents=True, exist_ok=True)
    if not any(cache.glob("face_recognition-*.tar.gz")):
        # the sdist (not the wheel) carries tests/test_images
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "--disable-pip-version-check", "-q", "-d", str(cache),
                            f"{DEMO_PACKAGE[0]}=={DEMO_PACKAGE[1]}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise E.EdgeError(E.FILE_NOT_EXIST, "could not fetch the demo photos from the package index; "
                              f"pass --source FOLDER instead ({r.stderr.strip()[-300:]})")
    archive = next(cache.glob("face_recognition-*.tar.gz"))
    tmp = dest.with_suffix(".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if "/tests/test_images/" in m.name and m.name.endswith((".jpg", ".png")):
                (tmp / Path(m.name).name).write_bytes(t.extractfile(m).read())
    tmp.rename(dest)
    return dest


def run(cfg: Config, source: str | None = None) -> dict:
    from edge.engine import FaceEngine

    cfg.models_dir = cfg.models_path      # keep the built pack, but
    cfg.home = cfg.home / "demo"          # a library of its own: the demo never touches real users
    folder = Path(source) if source else demo_photos(cfg)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no photos in {folder}")
    shutil.rmtree(cfg.db_path.parent, ignore_errors=True)
    eng = FaceEngine(cfg)
    enrolled = []
    enrol_files = {v: k for k, v in ENROL.items()} if not source else {p.name: p.stem.split("-")[0] for p in photos[:2]}
    for p in photos:
        if p.name in enrol_files:
            eng.user_add(str(p), enrol_files[p.name], "demo")
            enrolled.append({"user_id": enrol_files[p.name], "photo": p.name})
    results = []
    for p in photos:
        if p.name in enrol_files:
            continue
        try:
            r = eng.identify(str(p), ["demo"])
            best = r["user_list"][0] if r["user_list"] else {}
            results.append({"photo": p.name, "recognised": r["user_id"], "score": best.get("score"),
                            "nearest": best.get("user_id")})
        except E.EdgeError as e:
            results.append({"photo": p.name, "recognised": None, "error": e.name})
    for r in results:       # for the person at the terminal; stdout holds only the JSON (`--json`)
        print(f"  {r['photo']:<28} -> {r['recognised'] or 'unknown':<10} score {r.get('score')}", file=sys.stderr,
              flush=True)
    eng.close()
    return {"photos": str(folder), "enrolled": enrolled, "results": results}
