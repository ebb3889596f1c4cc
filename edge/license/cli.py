"""`edge-license`: the vendor's tool (never needed on a device).

    edge-license keygen                       signing key pair (vendor.key stays with the vendor)
    edge-license serials add [-n N] [--trial] [--max-users N] [--devices N]
    edge-license serials list
    edge-license revoke SERIAL                 and `edge-license revocations -o crl.json` for devices
    edge-license sign request.json -o license.json          offline activation
    edge-license batch req1.json req2.json … -o bundle.json  batch activation
    edge-license serve [--host H] [--port P]  online activation (reference server)

State lives in ``--dir`` (default ``$EDGE_LICENSE_DIR`` or ``./license-vendor``): vendor.key,
vendor.pub and vendor.db (serials and activations).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .. import cli_json as J
from .. import errors as E
from ..files import write_atomic
from . import core


def _vendor(args):
    from .vendor import Vendor

    d = Path(args.dir)
    return Vendor(d / "vendor.db", d / "vendor.key")


def _write(doc: dict, out: str | None):
    if out:
        write_atomic(Path(out), json.dumps(doc, indent=1).encode(), 0o644)
        return {"file": out}
    return doc


def build_parser() -> argparse.ArgumentParser:
    p = J.ArgumentParser(prog="edge-license", description="edge vendor licensing tool")
    p.add_argument("--dir", default=os.environ.get("EDGE_LICENSE_DIR", "license-vendor"),
                   help="vendor key and database directory")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("keygen", help="create the Ed25519 signing key pair")
    s = sub.add_parser("serials", help="issue and list serial numbers").add_subparsers(dest="scmd", required=True)
    a = s.add_parser("add")
    a.add_argument("-n", type=J.int_in(1, 100_000), default=1)
    a.add_argument("--trial", action="store_true", help="test serial: valid 3 months from activation")
    a.add_argument("--days", type=J.int_in(1, 100 * 366), help="valid this many days from activation (default: permanent)")
    a.add_argument("--devices", type=J.int_in(1, 10_000_000), default=1, help="devices one serial may activate (default 1)")
    a.add_argument("--max-users", type=J.int_in(1, 10_000_000), help="library size the license allows")
    a.add_argument("--liveness", help="comma list of liveness modes allowed (default: all)")
    a.add_argument("--modes", help="comma list of gate,attendance,verify (default: all)")
    a.add_argument("--note", default="")
    s.add_parser("list")
    r = sub.add_parser("revoke", help="revoke a serial")
    r.add_argument("serial")
    c = sub.add_parser("revocations", help="signed revocation list for devices (edge license import)")
    c.add_argument("-o", "--output")
    g = sub.add_parser("sign", help="offline activation: sign a device's request file")
    g.add_argument("request")
    g.add_argument("-o", "--output")
    b = sub.add_parser("batch", help="batch activation: one bundle for many devices' requests")
    b.add_argument("requests", nargs="+")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--trial", action="store_true")
    v = sub.add_parser("serve", help="the online activation server")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=J.int_in(0, 65535), default=8731)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return J.run(argv, lambda: build_parser().parse_args(argv), _execute, indent=1)


def _execute(args):
    logging.basicConfig(level=logging.INFO if args.verbose or args.cmd == "serve" else logging.WARNING,
                        format='{"level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}')
    return _run(args)


def _run(args):
    from .vendor import keygen

    if args.cmd == "keygen":
        return keygen(Path(args.dir))
    vendor = _vendor(args)
    try:
        if args.cmd == "serials" and args.scmd == "add":
            feats = {}
            if args.max_users:
                feats["max_users"] = args.max_users
            if args.liveness:
                feats["liveness"] = args.liveness.split(",")
            if args.modes:
                feats["modes"] = args.modes.split(",")
            return {"serials": vendor.add_serials(args.n, feats, args.trial, args.devices, args.days, args.note)}
        if args.cmd == "serials":
            return {"serials": vendor.serials()}
        if args.cmd == "revoke":
            vendor.revoke(args.serial)
            return {"revoked": core.normalize_serial(args.serial)}
        if args.cmd == "revocations":
            return _write(vendor.revocations(), args.output)
        if args.cmd == "sign":
            return _write(vendor.sign_request(core.read_json(args.request, "activation request")), args.output)
        if args.cmd == "batch":
            reqs = [core.read_json(r, "activation request") for r in args.requests]
            doc = vendor.bundle(reqs, trial=args.trial)
            return _write(doc, args.output) | {"devices": len(reqs),
                                               "serials": [lic["payload"]["serial"] for lic in doc["payload"]["licenses"]]}
        if args.cmd == "serve":
            from .server import make_server

            try:
                srv = make_server(vendor, args.host, args.port)
            except OSError as e:   # port in use, address not on this machine, no permission
                raise E.EdgeError(E.NETWORK_ERROR, f"cannot listen on {args.host}:{args.port}: {e.strerror or e} "
                                  "(choose another --port, or stop what is using it)") from None
            sys.stderr.write(f"edge-license: serving on http://{args.host}:{srv.server_address[1]}\n")
            try:
                srv.serve_forever()
            finally:
                srv.server_close()
            return {"stopped": True}
    finally:
        vendor.close()
    raise E.EdgeError(E.ILLEGAL_PARAMS, f"unknown command {args.cmd}")


if __name__ == "__main__":
    sys.exit(main())
