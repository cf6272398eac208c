"""Back-channel logout delivery (idp.services.logout): one POST per attempt with the configured timeout,
retries on network errors and 5xx only, and the token never in the log."""

from __future__ import annotations

import io
import logging

import pytest
import requests

from idp.services.logout import DeliverySettings
from idp.services.logout import deliver

URI = "https://rp.example/backchannel"
TOKEN = "header.claims.signature"


class FakeRp:
    """Answers each POST with the next item of ``answers``: a status code, or an exception to raise."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[dict] = []

    def post(self, uri, **kwargs):
        self.calls.append({"uri": uri, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = answer
        response.raw = io.BytesIO(b"")
        return response


def _deliver(rp: FakeRp, retries: int = 2, sleeps: list | None = None) -> bool:
    sleeps = [] if sleeps is None else sleeps
    settings = DeliverySettings(timeout=3, retries=retries)
    return deliver(URI, TOKEN, settings=settings, post=rp.post, sleep=sleeps.append)


@pytest.mark.parametrize("status", [200, 204])
def test_success_is_one_form_post_with_the_timeout(status):
    rp = FakeRp(status)
    assert _deliver(rp) is True
    # §2.5: the token in a form-encoded body; no redirect followed; the timeout bounds connect and read.
    form = {"logout_token": TOKEN}
    assert rp.calls == [{"uri": URI, "data": form, "timeout": (3, 3), "allow_redirects": False}]


@pytest.mark.parametrize("failure", [
    requests.ConnectionError("refused"), requests.ReadTimeout("slow"), requests.ConnectTimeout("dead"),
    500, 503,
])
def test_failures_are_retried_then_given_up(failure, caplog):
    rp = FakeRp(failure, failure, failure)
    sleeps = []
    assert _deliver(rp, retries=2, sleeps=sleeps) is False
    assert len(rp.calls) == 3 and sleeps == [0.5, 1.0]
    assert f"back-channel logout to {URI}: gave up after 3 attempts" in caplog.text
    assert TOKEN not in caplog.text


def test_a_retry_that_succeeds_stops_there():
    rp = FakeRp(requests.ConnectionError("refused"), 502, 200, 200)
    assert _deliver(rp, retries=3) is True
    assert len(rp.calls) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 302])
def test_a_refusal_is_not_retried(status, caplog):
    # §2.8: 400 says the relying party rejected this token; sending it again changes nothing.
    caplog.set_level(logging.WARNING)
    rp = FakeRp(status, 200)
    assert _deliver(rp) is False
    assert len(rp.calls) == 1 and f"refused with HTTP {status}" in caplog.text


def test_no_retries_means_one_attempt():
    rp = FakeRp(requests.ConnectionError("refused"))
    assert _deliver(rp, retries=0) is False
    assert len(rp.calls) == 1
