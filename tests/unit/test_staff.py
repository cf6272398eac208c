"""Staff second factor (RFC 6238) and secrets at rest, and the audit log's refusal to hold secrets."""

from __future__ import annotations

import pyotp
import pytest

from idp.services import audit
from idp.services.staff import totp

SECRET = pyotp.random_base32()
NOW = 1_800_000_015  # inside step 60_000_000


def _code(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_is_accepted_one_step_either_side(offset):
    step = NOW // 30 + offset
    assert totp.matching_step(SECRET, _code(step), NOW) == step


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_a_code_outside_the_window_is_refused(offset):
    assert totp.matching_step(SECRET, _code(NOW // 30 + offset), NOW) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", None, "１２３４５６"])
def test_malformed_codes_are_refused(code):
    assert totp.matching_step(SECRET, code, NOW) is None


def test_spaces_in_a_typed_code_do_not_matter():
    code = _code(NOW // 30)
    assert totp.matching_step(SECRET, f" {code[:3]} {code[3:]} ", NOW) == NOW // 30


def test_the_sealed_secret_opens_only_with_its_key():
    key = totp.sealing_key("", "server secret")
    sealed = totp.seal(SECRET, key)
    assert SECRET not in sealed and totp.seal(SECRET, key) != sealed  # a fresh nonce each time
    assert totp.unseal(sealed, key) == SECRET
    assert totp.unseal(sealed, totp.sealing_key("", "another server secret")) is None
    assert totp.unseal(sealed, totp.sealing_key("own totp key", "server secret")) is None
    assert totp.unseal("not base64!", key) is None


def test_the_provisioning_uri_is_what_authenticator_apps_read():
    user = type("User", (), {"username": "ivanova"})()
    uri = totp.provisioning_uri(user, SECRET, "idp")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == SECRET and parsed.name == "ivanova" and parsed.issuer == "idp"
    assert parsed.digits == 6 and parsed.interval == 30
    assert totp.qr_png(uri).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "temporary_password",
        "client_secret",
        "access_token",
        "snils",
        "code",
        "totp_secret",
        "password_hash",
    ],
)
def test_audit_details_never_carry_secrets(key):
    ctx = audit.Context(audit.ANONYMOUS, None, 0)
    with pytest.raises(ValueError):
        audit.record(_NoSession(), ctx, "x", details={key: "value"})


def test_audit_details_may_carry_lifetimes_and_identifiers():
    session = _NoSession()
    ctx = audit.Context(audit.Actor("staff", 1, "ivanova"), "10.0.0.1", 5)
    audit.record(
        session,
        ctx,
        "client.updated",
        client_id="c",
        reason="  why  ",
        details={"access_token_ttl": 60, "redirect_uris": ["https://x"]},
    )
    [(statement, row)] = session.executed
    assert statement.table.name == "audit_events"
    assert (row["at"], row["actor_name"], row["ip"], row["reason"]) == (5, "ivanova", "10.0.0.1", "why")
    assert row["details"] == {"access_token_ttl": 60, "redirect_uris": ["https://x"]}


class _NoSession:
    def __init__(self):
        self.executed = []

    def execute(self, statement, params):
        self.executed.append((statement, params))


def test_full_width_digits_count_as_digits():
    code = _code(NOW // 30).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert totp.matching_step(SECRET, code, NOW) == NOW // 30
