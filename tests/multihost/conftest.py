"""The ``two_hosts`` fixture: one pair of production hosts for the whole module (tests/multihost/hosts.py)."""

from __future__ import annotations

import pytest

from .hosts import two_hosts as start_two_hosts


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    with start_two_hosts(tmp_path_factory.mktemp("two-hosts")) as hosts:
        yield hosts
