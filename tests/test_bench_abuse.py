"""The server of ``python -m tests.bench_abuse`` keeps answering however much it logs.

The benchmark once read the server's output through a pipe only after the run. Under its load the
server logs a line for each POST the rate limit refuses; once 64 KiB of them filled the pipe, the next
write blocked inside the logging handler holding its lock, every thread of both workers waited on that
lock, and discovery got no answer at all (issue 10). This drives the same server past that much output
and asks for discovery once more.
"""

from __future__ import annotations

import os

import pytest
import requests

from .bench_abuse import csrf_token
from .bench_abuse import prepare
from .bench_abuse import start_server
from .helpers import redis_url
from .processes import free_port
from .processes import wait_until_serving

# Its own SQLite database whatever this pass uses: the SQLite pass runs it.
pytestmark = pytest.mark.once

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", redis_url(3))
# Linux's default pipe capacity, and what the server must have written past it.
PIPE_CAPACITY = 64 * 1024
MARGIN = 16 * 1024
# A refused POST writes ~240 bytes (its access line and the limit's): a bound on the loop, never reached.
MOST_POSTS = 2000


def test_bench_server_answers_after_more_log_than_a_pipe_holds(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The rate of pages per address would refuse this loop's POSTs before the form's limit logs them.
    env = prepare(tmp_path, url, f"sqlite:///{tmp_path}/idp.sqlite3", REDIS_URL, pages_per_second="0")
    log = tmp_path / "server.log"
    server = start_server(env, port, log)
    try:
        wait_until_serving(server, url)
        with requests.Session() as http:
            page = http.get(url + "/reset/", timeout=30)
            form = {"csrf_token": csrf_token(page.text), "login": "77-9999999", "phone": "+7 916 123-45-67"}
            for _ in range(MOST_POSTS):
                if log.stat().st_size > PIPE_CAPACITY + MARGIN:
                    break
                http.post(url + "/reset/", data=form, allow_redirects=False, timeout=30)
            assert log.stat().st_size > PIPE_CAPACITY + MARGIN, "the refused POSTs no longer log"
            assert "exceeded at endpoint: reset.start" in log.read_text(encoding="utf-8")
            answer = http.get(url + "/.well-known/openid-configuration", timeout=30)
            # granian closes every answer (PEP 3333): each of those requests left the count of pages in
            # flight ([limits] pages_in_flight, idp.admission) as it found it.
            page = http.get(url + "/reset/", timeout=30)
        assert answer.status_code == 200
        assert page.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)
