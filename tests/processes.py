"""The provider as separate processes, the way an operator runs it: the `idp` command of this
virtualenv (or of another), a free port on 127.0.0.1, and a wait until the server answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

IDP = str(Path(sys.executable).with_name("idp"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, url: str, timeout: float = 60, verify=True) -> None:
    """Poll ``url``'s discovery document until it answers; fail early if ``server`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(f"{url}/.well-known/openid-configuration", timeout=2, verify=verify)
            return
        except requests.ConnectionError as error:
            if server.poll() is not None:
                out, err = server.communicate()
                raise AssertionError(f"the server exited with {server.returncode}:\n{out}\n{err}") from error
            assert time.monotonic() < deadline, f"nothing answered at {url} within {timeout} s"
            time.sleep(0.2)
