"""``make demo``: the provider and both demo relying parties on loopback ports, until Ctrl-C.

The Makefile first runs ``idp db upgrade``, ``idp keys ensure`` and ``idp demo --registrations DIR``
(which prints the demo account and writes the two registrations); this starts ``idp serve`` and the two
apps, each in a process of its own, and says where to click.

    python -m clients.demo [DIR]      DIR: the registrations, default instance/demo
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

PROVIDER = "http://127.0.0.1:5000"
CABINET = "http://127.0.0.1:5001"
PORTAL = "http://127.0.0.1:5002"


def main() -> None:
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join("instance", "demo")
    python = sys.executable
    cabinet, portal = os.path.join(directory, "cabinet.json"), os.path.join(directory, "portal.json")
    commands = [
        [os.path.join(os.path.dirname(python), "idp"), "serve", "--host", "127.0.0.1", "--port", "5000"],
        [python, "-m", "clients.cabinet", "--registration", cabinet, "--port", "5001"],
        [python, "-m", "clients.portal", "--registration", portal, "--port", "5002"],
    ]
    processes = [subprocess.Popen(command) for command in commands]
    print(
        f"""
Three apps are starting:
  {CABINET}  «Личный кабинет»: «Войти», then the demo login and temporary password above
                          (the provider asks for a new password first), and you see your data.
  {PORTAL}  «Портал услуг»: «Войти» brings you back signed in, no password (single sign-on).
  {PROVIDER}  the provider: which sites you are signed in to, and «Выйти» from all of them.
«Выйти» at one site, then reload the other: it is signed out too (back-channel logout).
Ctrl-C stops all three.
""",
        flush=True,
    )
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
