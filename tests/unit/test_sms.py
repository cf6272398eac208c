"""The SMS backends. SMS Aero runs the real smsaero-api client against a local TLS fake gateway."""

import json
import logging
import time

import pytest

from idp.config import SmsSettings
from idp.errors import SmsDeliveryError
from idp.services.sms import make_sender

from ..fake_smsaero import API_KEY
from ..fake_smsaero import EMAIL


def _smsaero(gateway, **overrides):
    values = dict(backend="smsaero", file_path="", email=EMAIL, api_key=API_KEY, gate=gateway.gate, timeout=3)
    values.update(overrides)
    return make_sender(SmsSettings(**values))


def test_file_backend_appends_one_json_object_per_message(tmp_path):
    sender = make_sender(SmsSettings(backend="file", file_path=str(tmp_path / "out" / "sms.jsonl")))
    sender.send("+79161234567", "Новый пароль: abc")
    sender.send("+79161234568", "второе")
    lines = [
        json.loads(line) for line in (tmp_path / "out" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [(m["to"], m["text"]) for m in lines] == [
        ("+79161234567", "Новый пароль: abc"),
        ("+79161234568", "второе"),
    ]
    assert all(m["sent_at"].endswith("+00:00") for m in lines)


@pytest.mark.parametrize("number", ["+4915112345678", "79161234567", "+7abc"])
def test_numbers_outside_allowed_country_codes_are_refused(tmp_path, number):
    sender = make_sender(SmsSettings(backend="file", file_path=str(tmp_path / "sms.jsonl")))
    with pytest.raises(SmsDeliveryError):
        sender.send(number, "текст")
    assert not (tmp_path / "sms.jsonl").exists()


def test_smsaero_delivers_through_the_real_client(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    _smsaero(gateway).send("+79161234567", "Новый пароль: abc")
    [request] = gateway.received
    assert (request["path"], request["number"], request["text"]) == (
        "/v2/sms/send",
        79161234567,
        "Новый пароль: abc",
    )
    assert API_KEY not in caplog.text


@pytest.mark.parametrize("mode", ["reject", "no_credits", "garbage"])
def test_smsaero_gateway_errors_become_delivery_errors(gateway, caplog, mode):
    caplog.set_level(logging.DEBUG)
    gateway.mode = mode
    with pytest.raises(SmsDeliveryError):
        _smsaero(gateway).send("+79161234567", "текст")
    assert API_KEY not in caplog.text


def test_smsaero_timeout_is_bounded(gateway):
    gateway.mode, gateway.delay = "slow", 6
    started = time.monotonic()
    with pytest.raises(SmsDeliveryError):
        _smsaero(gateway, timeout=3).send("+79161234567", "текст")
    assert time.monotonic() - started < 5.5


def test_smsaero_never_falls_back_to_plain_http(gateway, monkeypatch):
    # Without our CA the TLS handshake fails; the client must give up, not retry over http://.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(SmsDeliveryError):
        _smsaero(gateway).send("+79161234567", "текст")
    assert gateway.received == []
