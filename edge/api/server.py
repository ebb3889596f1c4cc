"""`edge serve`: uvicorn running the device service, with the camera loop on its own thread
when asked (``--camera`` / ``serve.camera``). SIGTERM / Ctrl-C stop both cleanly."""
from __future__ import annotations

import logging

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
    try:
        server.run()
    except OSError as e:
        raise E.EdgeError(E.SYSTEM_ERROR, f"cannot listen on {host}:{port}: {e}") from None
    if not server.started:
        raise E.EdgeError(E.SYSTEM_ERROR, f"the service did not start on {host}:{port} (port in use?)")
    return {"stopped": True, "host": host, "port": port, "camera": camera}
