"""`edge serve`: uvicorn running the device service, with the camera loop on its own thread
when asked (``--camera`` / ``serve.camera``). SIGTERM / Ctrl-C stop both cleanly."""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys

from .. import errors as E

log = logging.getLogger("edge.serve")


def serve(cfg, host: str | None = None, port: int | None = None, camera: bool | None = None,
          source: str | None = None) -> dict:
    try:
        import uvicorn
    except ImportError:
        raise E.EdgeError(E.MODEL_IS_EMPTY, "the device service needs the serve extra: "
                          "pip install 'edge-face[serve]'") from None
    from .app import create_app

    sc = cfg.serve
    host, port = host or sc.host, port or sc.port
    camera = sc.camera if camera is None else camera
    app = create_app(cfg, camera=camera, source=source)
    state = app.state.edge
    if not state.admin.configured():
        log.warning("no admin account: the page refuses every login until `edge admin set-password` is run")
    if not state.keys.all():
        log.warning("no API keys: add one with `edge api key add` (or EDGE_API_KEY / EDGE_SECRET_KEY)")

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            ssl_certfile=sc.tls_cert or None, ssl_keyfile=sc.tls_key or None,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    if sc.tls_cert:
        check_tls(sc.tls_cert, sc.tls_key)
    # bound here, not by uvicorn: its bind failure is sys.exit(3) with no JSON error (a busy port,
    # an address this machine does not have)
    sock = listen(host, port)
    scheme = "https" if sc.tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    print(json.dumps({"level": "INFO", "logger": "edge.serve", "msg": f"listening on {scheme}://{shown}:{port}/ "
                      f"(admin page /admin/, v3 API /rest/2.0/face/v3/, events /events)"}),
          file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        if not server.started:    # the application's startup failed (its log says why)
            raise E.EdgeError(E.SYSTEM_ERROR, f"the service did not start on {host}:{port}: see the log above") \
                from None
        raise
    finally:
        sock.close()
    return {"stopped": True, "host": host, "port": port, "camera": camera}


def check_tls(cert: str, key: str) -> None:
    """The certificate and key load as a pair, or the documented error naming them (uvicorn's own
    failure was "unexpected error (FileNotFoundError)" with no file name, or "SSLError: PEM lib")."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except FileNotFoundError:
        missing = next((f for f in (cert, key) if not os.path.isfile(f)), cert)
        raise E.EdgeError(E.FILE_NOT_EXIST, f"serve.tls_cert / serve.tls_key: {missing} does not exist") from None
    except (ssl.SSLError, OSError, ValueError) as e:
        raise E.EdgeError(E.PARARM_ERROR, f"serve.tls_cert {cert} and serve.tls_key {key} are not a PEM certificate "
                          f"and its private key ({e}): check that they are not swapped and belong together") from None


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, or the documented error saying why not."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise E.EdgeError(E.PARARM_ERROR, f"cannot listen on {host}:{port}: {e.strerror or e} (serve.host / "
                          "--host: an address of this machine, 127.0.0.1 or 0.0.0.0)") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        hint = ("another program (another edge serve?) uses that port: stop it or choose --port / serve.port"
                if e.errno == errno.EADDRINUSE else "choose an address of this machine (serve.host / --host)"
                if e.errno == errno.EADDRNOTAVAIL else "ports below 1024 need root" if e.errno == errno.EACCES
                else "check serve.host and serve.port")
        raise E.EdgeError(E.SYSTEM_ERROR, f"cannot listen on {host}:{port}: {e.strerror or e}: {hint}") from None
    sock.set_inheritable(True)
    return sock
