"""The device service on a loopback port in this process, for the API tests (real HTTP)."""
import threading

from tests.helpers import free_port, wait_for


class Served:
    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert wait_for(lambda: self.server.started, 30), "the service did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)
