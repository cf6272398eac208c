"""One back-channel logout attempt (idp.services.logout.post): one form POST through the outbound client,
and what its answer means for the outbox — delivered, worth another attempt (no answer, 5xx, 408/425/429)
or refused for good (4xx, a URI the outbound rules refuse) — with the token never in the log or in the
error that becomes the row's last_error. Retries and backoff are the outbox's (tests/unit/test_outbox.py)."""

from __future__ import annotations

import logging

import pytest

from idp.errors import OutboxRefusedError
from idp.errors import OutboxRetryError
from idp.services.logout import post
from idp.services.outbound_http import OutboundError
from idp.services.outbound_http import OutboundRefusedError
from idp.services.outbound_http import OutboundResponse
from idp.services.outbound_http import OutboundTimeoutError
from idp.services.outbound_http import ResponseTooLargeError

URI = "https://rp.example/backchannel"
TOKEN = "header.claims.signature"


class FakeClient:
    """An OutboundClient that answers each POST with the next item of ``answers``: a status code, or an
    exception to raise."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[tuple[str, dict]] = []

    def post_form(self, uri, form):
        self.calls.append((uri, form))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return OutboundResponse(answer, {}, b"")


@pytest.mark.parametrize("status", [200, 204])
def test_success_is_one_form_post(status):
    rp = FakeClient(status)
    post(URI, TOKEN, client=rp)
    # §2.5: the token in a form-encoded body, one parameter.
    assert rp.calls == [(URI, {"logout_token": TOKEN})]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (OutboundError("ConnectionRefusedError"), "OutboundError: ConnectionRefusedError"),
        (OutboundTimeoutError("no answer within 5 s"), "OutboundTimeoutError: no answer within 5 s"),
        (ResponseTooLargeError("the body is over 65536 bytes"), "ResponseTooLargeError: the body is over"),
        (500, "HTTP 500"),
        (503, "HTTP 503"),
        (429, "HTTP 429"),
        (408, "HTTP 408"),
    ],
)
def test_failures_worth_another_attempt(failure, error, caplog):
    rp = FakeClient(failure)
    with pytest.raises(OutboxRetryError) as raised:
        post(URI, TOKEN, client=rp)
    assert len(rp.calls) == 1
    assert str(raised.value).startswith(f"{URI}: {error}")
    assert TOKEN not in caplog.text and TOKEN not in str(raised.value)


@pytest.mark.parametrize("status", [400, 401, 404, 302])
def test_a_refusal_is_final(status, caplog):
    # §2.8: 400 says the relying party rejected this token; sending it again changes nothing.
    caplog.set_level(logging.WARNING)
    rp = FakeClient(status)
    with pytest.raises(OutboxRefusedError) as raised:
        post(URI, TOKEN, client=rp)
    assert str(raised.value) == f"{URI}: refused with HTTP {status}"
    assert f"refused with HTTP {status}" in caplog.text


def test_a_uri_the_outbound_rules_refuse_is_final(caplog):
    rp = FakeClient(OutboundRefusedError("address", "rp.example resolves to a non-public address"))
    with pytest.raises(OutboxRefusedError):
        post(URI, TOKEN, client=rp)
    assert "refused by the outbound rules: rp.example resolves to a non-public address" in caplog.text
