import pytest

from idp.extensions import db
from idp.models import Account
from idp.services.password_change import PasswordPolicyError
from idp.services.password_change import PolicySettings
from idp.services.password_change import check_new_password
from idp.services.password_change import is_common

POLICY = PolicySettings(min_length=8)


@pytest.mark.parametrize("password", ["password", "PASSWORD", "12345678", "qwertyuiop", "йцукенгшщз", "ЙЦУКЕНГШ"])
def test_common_passwords_and_their_russian_layout_twins_are_refused(password):
    assert is_common(password)


@pytest.mark.parametrize("password", ["мой новый пароль 2026", "Kx7#pQ2v!m", "сахарово-кабинет-77"])
def test_uncommon_passwords_pass(password):
    assert not is_common(password)


def test_policy_reports_each_reason(app, account):
    with app.app_context():
        owner = db.session.get(Account, account["id"])
        cases = {
            "short12": "too_short",
            "x" * 257: "too_long",
            "iloveyou": "common",
            "77-0000001": "personal",
            "рахимов": None,  # 7 characters: too short first
            "БАХТИЁРОВИЧ": "personal",
        }
        for password, reason in cases.items():
            with pytest.raises(PasswordPolicyError) as error:
                check_new_password(owner, password, POLICY)
            assert error.value.reason == (reason or "too_short"), password
        check_new_password(owner, "пароль" * 11, POLICY)
