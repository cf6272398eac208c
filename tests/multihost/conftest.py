"""The ``two_hosts`` fixture: one pair of production hosts for the whole module (tests/multihost/hosts.py).

``two_hosts.receiver_port``: a loopback port nothing listens on yet, which the hosts may call over http
(``[outbound] http_allowed_hosts``): a relying party's back-channel logout endpoint that comes up late."""

from __future__ import annotations

import pytest

from ..relying_parties import closed_port
from .hosts import two_hosts as start_two_hosts


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    port = closed_port()
    with start_two_hosts(
        tmp_path_factory.mktemp("two-hosts"), outbound={"http_allowed_hosts": [f"127.0.0.1:{port}"]}
    ) as hosts:
        hosts.receiver_port = port
        yield hosts
