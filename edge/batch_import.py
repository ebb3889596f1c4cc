"""Batch import of ``user-group.jpg`` files from a folder or a zip (the SDK's import format).

Each file is one enrolment transaction, so an interrupted import leaves whole users or none.
Rules as the seed's: .jpg/.jpeg/.png only, the name split on "-" gives exactly two parts
(user, group), one face is used (the seed: the largest; here the same face `edge user add` takes
from the photo, ``FaceAnalyzer.main_face``: the central one unless a much larger face is elsewhere,
with the still-image second detector pass), no liveness, an existing user in that group is
skipped as a duplicate.
"""
from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import errors as E
from . import image as I
from .library import ID_RE

log = logging.getLogger("edge.import")

EXTS = {".jpg", ".jpeg", ".png"}

# batch photos are weaker than live enrolment (the seed's FAQ); refuse what would enrol badly
MIN_FACE_PX = 30        # seed: minimum face 30x30 px
MAX_BLUR = 0.8          # seed (Linux): blur < 0.8
MIN_ILLUMINATION = 40   # seed (cloud): illumination > 40
MAX_ANGLE = 30.0        # seed: recognisable up to yaw/pitch +-30 degrees


@dataclass
class ImportReport:
    imported: list = field(default_factory=list)
    no_face: list = field(default_factory=list)
    poor_quality: list = field(default_factory=list)
    duplicate: list = field(default_factory=list)
    bad_name: list = field(default_factory=list)
    bad_image: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d["summary"] = {k: len(v) for k, v in self.__dict__.items()}
        return d


def _entries(src: Path):
    """(name, bytes-loader) for each candidate file, sorted by name."""
    if src.is_dir():
        for f in sorted(src.rglob("*")):
            if f.is_file():
                yield f.name, f.read_bytes
    elif zipfile.is_zipfile(src):
        z = zipfile.ZipFile(src)
        for info in sorted(z.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                yield Path(info.filename).name, (lambda i=info: z.read(i))
    else:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{src} is neither a folder nor a zip file")


def parse_name(name: str) -> tuple[str, str] | None:
    stem, ext = Path(name).stem, Path(name).suffix.lower()
    if ext not in EXTS:
        return None
    parts = stem.split("-")
    if len(parts) != 2 or not all(ID_RE.match(p) for p in parts):
        return None
    return parts[0], parts[1]


def quality_problem(face) -> str | None:
    q = face.quality
    if q["size"] < MIN_FACE_PX:
        return f"face {q['size']} px < {MIN_FACE_PX} px"
    if q["illumination"] < MIN_ILLUMINATION:
        return f"illumination {q['illumination']} < {MIN_ILLUMINATION}"
    if q["blur"] > MAX_BLUR:
        return f"blur {q['blur']} > {MAX_BLUR}"
    if abs(face.pose["yaw"]) > MAX_ANGLE or abs(face.pose["pitch"]) > MAX_ANGLE:
        return f"head turned (yaw {face.pose['yaw']:.0f}, pitch {face.pose['pitch']:.0f})"
    return None


def run(engine, src: str | Path, progress=None) -> ImportReport:
    src = Path(src)
    entries = list(_entries(src))
    rep = ImportReport()
    lib = engine.library
    with lib.batch():
        for name, read in entries:
            if progress:
                progress.step(name)
            ug = parse_name(name)
            if ug is None:
                rep.bad_name.append({"file": name, "reason": "expected user-group.jpg/.png with "
                                     "letters, digits and _ only"})
                continue
            user, group = ug
            exists = lib.db.execute("SELECT 1 FROM members WHERE user_id=? AND group_id=?", (user, group)).fetchone()
            if exists:
                rep.duplicate.append({"file": name, "user_id": user, "group_id": group})
                continue
            try:
                img = I.decode(read(), name)
            except E.EdgeError as e:
                rep.bad_image.append({"file": name, "reason": e.message})
                continue
            faces = engine.analyzer.detect_still(img, max_faces=1)
            if not faces:
                rep.no_face.append({"file": name})
                continue
            problem = quality_problem(faces[0])
            if problem:
                rep.poor_quality.append({"file": name, "reason": problem})
                continue
            rec = engine.record_for(img, faces[0])
            try:
                token = lib.user_add(user, group, rec)
            except E.EdgeError as e:
                if e.code != E.DB_OP_FAILED:
                    raise
                rep.poor_quality.append({"file": name, "reason": e.message})  # library full / face limit
                continue
            rep.imported.append({"file": name, "user_id": user, "group_id": group, "face_token": token})
    if progress:
        progress.done()
    return rep
