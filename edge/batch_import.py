"""Batch import of ``user-group.jpg`` files from a folder or a zip (the SDK's import format).

Each file is one enrolment transaction, so an interrupted import leaves whole users or none.
Rules as the seed's: .jpg/.jpeg/.png only, the name split on "-" gives exactly two parts
(user, group), one face is used (the seed: the largest; here the same face `edge user add` takes
from the photo, ``FaceAnalyzer.main_face``: the central one unless a much larger face is elsewhere,
with the still-image second detector pass), no liveness, an existing user in that group is
skipped as a duplicate. Faces go through the same enrolment quality policy as `edge user add`
(``enrol_policy``).
"""
from __future__ import annotations

import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from . import enrol_policy
from . import errors as E
from . import image as I
from .library import ID_RE

log = logging.getLogger("edge.import")

EXTS = {".jpg", ".jpeg", ".png"}

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
    """(name, bytes-loader) for each candidate file, sorted by name. A loader raises the JSON
    error for its own file only (too big, unreadable, damaged zip member), so the import goes on."""
    if src.is_dir():
        for f in sorted(src.rglob("*")):
            if f.is_file():
                yield f.name, (lambda f=f: _read_file(f))
    elif src.is_file() and zipfile.is_zipfile(src):
        try:
            z = zipfile.ZipFile(src)
            infos = sorted(z.infolist(), key=lambda i: i.filename)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise E.EdgeError(E.IMAGE_TRANSFORM_FAILED, f"{src} is a damaged zip file ({e}): copy it again") from None
        for info in infos:
            if not info.is_dir():
                yield Path(info.filename).name, (lambda i=info: _read_member(z, i))
    elif not src.exists():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{src} does not exist: give a folder or a zip of user-group.jpg files")
    else:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{src} is neither a folder nor a zip file")


def _too_big(name: str, size: int) -> E.EdgeError:
    return E.EdgeError(E.FILE_TOO_BIG, f"{name} is {size} bytes; the limit is {I.MAX_FILE_BYTES}")


def _read_file(f: Path) -> bytes:
    try:
        size = f.stat().st_size
        if size > I.MAX_FILE_BYTES:
            raise _too_big(f.name, size)
        return f.read_bytes()
    except OSError as e:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{f.name} cannot be read: {e.strerror or e}") from None


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, streamed with a cap: the declared size is checked first and a member
    that inflates past it (a forged header) is cut off, so memory stays bounded by the limit.
    Reading to the end makes zipfile check the CRC."""
    name = Path(info.filename).name
    if info.file_size > I.MAX_FILE_BYTES:
        raise _too_big(name, info.file_size)
    try:
        with z.open(info) as f:
            data = f.read(I.MAX_FILE_BYTES + 1)
            if len(data) > I.MAX_FILE_BYTES:
                raise _too_big(name, len(data))
            f.read(1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as e:
        # bad CRC, damaged deflate stream, encrypted or unsupported compression
        raise E.EdgeError(E.IMAGE_TRANSFORM_FAILED, f"{name} is damaged inside the zip ({e})") from None
    return data


def parse_name(name: str) -> tuple[str, str] | None:
    stem, ext = Path(name).stem, Path(name).suffix.lower()
    if ext not in EXTS:
        return None
    parts = stem.split("-")
    if len(parts) != 2 or not all(ID_RE.fullmatch(p) for p in parts):
        return None
    return parts[0], parts[1]


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
                rep.bad_name.append({"file": name, "reason": "expected user-group.jpg/.png: 1-128 letters, "
                                     "digits and _ on each side of one '-'"})
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
            problems = enrol_policy.problems(faces[0], engine.cfg.enrol)
            if problems:
                rep.poor_quality.append({"file": name, "reason": "; ".join(p.text for p in problems),
                                         "quality": enrol_policy.figures(faces[0])})
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
