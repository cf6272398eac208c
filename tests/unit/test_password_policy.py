"""The new-password policy: each reason, and one entry point (services/password_policy.py) shared by the
migrants' check (services/selfservice/password.py) and the staff's (services/staff/members.py), both
through the credentials core (services/credentials.py)."""

import pytest

from idp.config import PasswordsSettings
from idp.config import Settings
from idp.errors import PasswordPolicyError
from idp.models import Account
from idp.models import StaffUser
from idp.services import password_policy
from idp.services import passwords
from idp.services.selfservice.password import check_without_old
from idp.services.staff import members

POLICY = PasswordsSettings(min_length=8)
CURRENT = passwords.hash_password("нынешний пароль 2025", 4)


def _account(surname="Рахимов", given_name="Алишер", middle_name="Бахтиёрович"):
    return Account(
        login="770000001",
        surname=surname,
        given_name=given_name,
        middle_name=middle_name,
        phone="+79161234567",
        password_hash=CURRENT,
    )


def check_new_password(account: Account, password: str, settings: PasswordsSettings) -> None:
    check_without_old(account, password, password, settings)


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short12", "too_short"),
        ("x" * 257, "too_long"),
        ("рахимов", "too_short"),  # 7 characters: too short first
        ("iloveyou", "common"),
        ("qwerty2024!", "common"),
        ("aaaaaaaaaa", "pattern"),
        ("77-0000001", "personal"),
        ("БАХТИЁРОВИЧ", "personal"),
        ("Rakhimov1990", "personal"),
        ("+79161234567", "personal"),
        ("moi patent 2024", "service"),
    ],
)
def test_policy_reports_each_reason(password, reason):
    with pytest.raises(PasswordPolicyError) as error:
        check_new_password(_account(), password, POLICY)
    assert error.value.reason == reason


@pytest.mark.parametrize(
    "surname, given_name, password",
    [
        ("Каримов", "Алишер", "Каримов1990"),
        ("Рахимов", "Бахтиёр", "Бахтиёр!"),
        ("Иванов", "Пётр", "Иванов12"),
    ],
)
def test_the_three_examples_of_the_issue_are_refused(surname, given_name, password):
    with pytest.raises(PasswordPolicyError) as error:
        check_new_password(_account(surname, given_name, None), password, POLICY)
    assert error.value.reason == "personal"


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "жёлтый трамвай едет мимо чайханы",
        "divan-krovat-i-dva-stula",
    ],
)
def test_sensible_passwords_pass(password):
    check_new_password(_account("Иванов", "Иван", "Иванович"), password, POLICY)


def test_staff_passwords_go_through_the_same_entry_point(monkeypatch):
    user = StaffUser(
        username="a.karimov",
        full_name="Каримов Алишер",
        password_hash=passwords.hash_password("old staff password 1", 4),
    )
    settings = Settings()
    for password, reason in [
        ("karimov-operator-2024", "personal"),
        ("Alisher-2024-smena", "personal"),
        ("qwertyuiop123", "common"),
        ("patent-office-night-shift", "service"),
    ]:
        with pytest.raises(PasswordPolicyError) as error:
            members.check_new_password(user, "old staff password 1", password, password, settings=settings)
        assert error.value.reason == reason, password
    calls = []
    monkeypatch.setattr(password_policy, "check", lambda password, context: calls.append(context) or "common")
    with pytest.raises(PasswordPolicyError):
        members.check_new_password(
            user, "old staff password 1", "ночная смена у окна", "ночная смена у окна", settings=settings
        )
    with pytest.raises(PasswordPolicyError):
        check_new_password(_account(), "ночная смена у окна", POLICY)
    assert calls == [password_policy.staff_context(user), password_policy.account_context(_account())]
