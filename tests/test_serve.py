"""What `make run` does, as a subprocess each: migrate, make the keys, then `idp serve`, which must answer
over HTTP (Flask's CLI ignores `app.run()`, so a server that never starts is an easy regression)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

IDP = str(Path(sys.executable).with_name("idp"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_idp_serve_answers_after_the_make_run_steps(tmp_path):
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {**os.environ, "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}", "IDP_SERVER_ISSUER": issuer}
    env.pop("IDP_CONFIG", None)
    for step in (["db", "upgrade"], ["keys", "ensure"]):
        subprocess.run([IDP, *step], env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        [IDP, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, "idp serve exited"
                assert time.monotonic() < deadline, "idp serve did not answer within 30 s"
                time.sleep(0.2)
        assert meta.status_code == 200 and meta.json()["issuer"] == issuer
        jwks = requests.get(meta.json()["jwks_uri"], timeout=5).json()
        assert {key["alg"] for key in jwks["keys"]} >= {"RS256", "ES256"}
        assert requests.get(f"{issuer}/login", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
