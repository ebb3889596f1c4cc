"""Getting models published outside PyPI onto a device: `edge models fetch NAME` downloads them
from their published URLs (devices that have a network once), `edge models import DIR` takes
them from a folder (air-gapped sites, a USB stick). Both check every file against the sha256
pinned in the catalogue before anything uses it, and both end in the same installed, carded
model (``catalogue.install``).

A download goes to ``<models>/.cache/<file>.part`` and is renamed only after its length and
sha256 are right, so a 404, a wrong checksum or a cut connection leaves no file behind.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

from .. import errors as E
from ..progress import Progress
from . import catalogue

log = logging.getLogger("edge.models")
CHUNK = 1 << 16


def _cache(models_dir: Path) -> Path:
    d = Path(models_dir) / ".cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _url(spec: dict, mirror: str | None) -> str:
    """The published URL, or the same file name under a site mirror."""
    return f"{mirror.rstrip('/')}/{spec['name']}" if mirror else spec["url"]


def download(url: str, dest: Path, sha256: str, timeout: float = 30.0, quiet: bool = False) -> Path:
    """Stream ``url`` into ``dest`` (sha256 and length checked); no partial file on any failure."""
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "edge-models"}),
                                    timeout=timeout) as r, open(part, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0)
            prog = Progress(total or 1, f"download {dest.name}", quiet=quiet or not total)
            while True:
                chunk = r.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                prog.step(n=len(chunk))
            if total and got != total:
                raise http.client.IncompleteRead(b"", total - got)
            out.flush()
            os.fsync(out.fileno())
            prog.done()
    except urllib.error.HTTPError as e:
        part.unlink(missing_ok=True)
        raise E.EdgeError(E.NETWORK_ERROR, f"{url} answered HTTP {e.code} ({e.reason}): the file has moved or the "
                          "mirror lacks it; or copy it onto the device and use `edge models import DIR`") from None
    except (http.client.IncompleteRead, ConnectionError) as e:
        part.unlink(missing_ok=True)
        raise E.EdgeError(E.NETWORK_ERROR, f"the connection to {url} was cut after {got} bytes ({type(e).__name__}): "
                          "nothing was kept; run the command again") from None
    except (socket.timeout, TimeoutError) as e:
        part.unlink(missing_ok=True)
        raise E.EdgeError(E.NETWORK_TIMEOUT, f"{url} did not answer in {timeout:g} s ({e}): check the network, or "
                          "use `edge models import DIR` with the files copied by hand") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        raise E.EdgeError(E.NETWORK_ERROR, f"cannot download {url} ({getattr(e, 'reason', e)}): check the network, "
                          "or use `edge models import DIR` with the files copied by hand") from None
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"{url} has sha256 {digest.hexdigest()}, expected {sha256}: refused "
                          "(not the published file, or altered on the way); nothing was kept")
    os.replace(part, dest)
    return dest


def _verified(path: Path, sha256: str) -> bool:
    from .cards import sha256_file

    return path.is_file() and sha256_file(path) == sha256


def fetch(name: str, models_dir: Path, mirror: str | None = None, timeout: float = 30.0,
          quiet: bool = False) -> list[dict]:
    """Download (or reuse from the cache) every file of catalogue entry ``name`` and install it."""
    entry = catalogue.entry(name)
    cache = _cache(models_dir)
    files = {}
    for spec in entry["files"]:
        dest = cache / spec["name"]
        if not _verified(dest, spec["sha256"]):
            log.info("downloading %s", _url(spec, mirror))
            download(_url(spec, mirror), dest, spec["sha256"], timeout, quiet)
        files[spec["name"]] = dest
    return catalogue.install(name, files, Path(models_dir))


MAX_MODEL_BYTES = 512 * 2**20     # the catalogue's largest file (SFace) is 37 MB


def import_folder(folder: Path, models_dir: Path, names: list[str] | None = None) -> list[dict]:
    """Install every catalogue entry whose files are all in ``folder`` (searched recursively and
    recognised by their pinned sha256, whatever they are called), or exactly ``names``."""
    from .cards import sha256_file

    folder = Path(folder)
    if not folder.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{folder} is not a folder: give the folder holding the model files")
    by_hash: dict[str, Path] = {}
    by_name: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            by_name.setdefault(p.name, p)
            # no published model is near this size: a USB stick's videos are not read through
            # (they were hashed, silently, for minutes)
            if p.stat().st_size <= MAX_MODEL_BYTES:
                by_hash.setdefault(sha256_file(p), p)
    wanted = names or [n for n, e in catalogue.CATALOGUE.items() if all(s["sha256"] in by_hash for s in e["files"])]
    if not wanted:
        known = "; ".join(f"{n}: {', '.join(s['name'] for s in e['files'])}" for n, e in catalogue.CATALOGUE.items())
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no known model files in {folder} (known: {known})")
    cache = _cache(models_dir)
    installed = []
    for name in wanted:
        files = {}
        for spec in catalogue.entry(name)["files"]:
            src = by_hash.get(spec["sha256"])
            if src is None:
                if spec["name"] in by_name:
                    raise E.EdgeError(E.MODEL_IS_EMPTY, f"{name}: {by_name[spec['name']]} does not match the published "
                                      f"file's sha256 {spec['sha256']}: refused (altered, truncated or another version)")
                raise E.EdgeError(E.FILE_NOT_EXIST, f"{name}: {spec['name']} (sha256 {spec['sha256']}) is not in {folder}")
            dest = cache / spec["name"]
            if not _verified(dest, spec["sha256"]):
                tmp = dest.with_name(dest.name + ".part")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
            files[spec["name"]] = dest
        installed += catalogue.install(name, files, Path(models_dir))
    return installed
