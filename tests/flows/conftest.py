"""Fixtures the SMS reset and the access recovery flows share: an app that sends its SMS through the
fake SMS Aero gateway."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.extensions import limiter

from ..conftest import make_config
from ..conftest import wipe_tables
from ..fake_smsaero import API_KEY
from ..fake_smsaero import EMAIL


@pytest.fixture
def aero_app(_schema, gateway):
    """Like ``app``, but its SMS go to ``gateway``."""
    sms = {"backend": "smsaero", "email": EMAIL, "api_key": API_KEY, "gate": gateway.gate, "timeout": 3}
    app = create_app(make_config(sms=sms))
    app.config["TESTING"] = True
    with app.app_context():
        limiter.reset()
    yield app
    wipe_tables(app)
