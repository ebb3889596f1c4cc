"""`edge serve` says where it listens, and a port or address it cannot use is the documented JSON
error with exit 1 (uvicorn's own bind failure was exit 3 with no JSON at all)."""
import json
import os
import socket
import subprocess
import sys

from tests.helpers import free_port, wait_for


def _serve(tmp_path, *args):
    env = dict(os.environ, EDGE_HOME=str(tmp_path / "home"))
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "--json", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_busy_port_or_a_foreign_address_is_the_json_error(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        p = _serve(tmp_path, "--port", str(busy.getsockname()[1]))
        out, _ = p.communicate(timeout=60)
    finally:
        busy.close()
    err = json.loads(out)
    assert p.returncode == 1 and err["errno"] == -1001 and "already in use" in err["msg"] and "--port" in err["msg"]
    p = _serve(tmp_path, "--host", "nosuchhost.invalid", "--port", "8300")
    err = json.loads(p.communicate(timeout=60)[0])
    assert p.returncode == 1 and err["errno"] == -1002 and "nosuchhost.invalid" in err["msg"]


def test_it_says_where_it_listens(tmp_path):
    import threading

    port = free_port()
    p = _serve(tmp_path, "--port", str(port))
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True).start()
    try:
        wait_for(lambda: any("listening on" in ln for ln in lines), 30)
    finally:
        p.terminate()
        p.wait(20)
    said = [ln for ln in lines if "listening on" in ln]
    assert said and f"http://127.0.0.1:{port}/" in said[0] and "/admin/" in said[0], lines


def test_tls_files_that_do_not_load_are_named(tmp_path):
    # uvicorn's own failures: "unexpected error (FileNotFoundError)" with no file named, or
    # "SSLError: PEM lib" for a swapped or damaged pair
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate\n")
    for cert, key, code, said in ((tmp_path / "none.pem", bad, -1007, "none.pem"), (bad, bad, -1002, "PEM")):
        cfg = tmp_path / "tls.toml"
        cfg.write_text(f'[serve]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
        p = _serve(tmp_path, "--config", str(cfg), "--port", str(free_port()))
        err = json.loads(p.communicate(timeout=60)[0])
        assert p.returncode == 1 and err["errno"] == code and said in err["msg"], err
