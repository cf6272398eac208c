"""The credentials core (idp.services.credentials): the rules of a new password around the policy of
``password_policy`` (old password, repeat, length), shared by migrants, staff and access recovery,
without an app or a database. The policy's own reasons: tests/unit/test_password_policy.py."""

import pytest

from idp.errors import PasswordPolicyError
from idp.services import passwords
from idp.services.credentials import check_new_password
from idp.services.password_policy import PolicyContext

CURRENT = "нынешний пароль 2025"
CURRENT_HASH = passwords.hash_password(CURRENT, 4)
# What the account of tests/conftest.py is known by: its login and names.
KNOWN_AS = PolicyContext(login="770000001", names=("Рахимов", "Алишер", "Бахтиёрович"))


def _check(new: str, repeat: str | None = None, old: str | None = None, min_length: int = 8) -> None:
    check_new_password(
        new,
        new if repeat is None else repeat,
        min_length=min_length,
        current_hash=CURRENT_HASH,
        old=old,
        context=KNOWN_AS,
    )


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short12", "too_short"),
        ("x" * 257, "too_long"),
        ("iloveyou", "common"),
        ("77-0000001", "personal"),
        ("рахимов", "too_short"),  # 7 characters: too short first
        ("БАХТИЁРОВИЧ", "personal"),
    ],
)
def test_policy_reports_each_reason(password, reason):
    with pytest.raises(PasswordPolicyError) as error:
        _check(password)
    assert error.value.reason == reason


def test_a_long_unicode_password_passes():
    # 140 characters, 260 bytes of UTF-8: the limit counts characters.
    _check(
        "Жёлтый трамвай едет мимо чайханы, а за ним бежит рыжий пёс Тимофей и лает на голубей у фонтана "
        "возле старого рынка в самом центре"
    )


@pytest.mark.parametrize(
    "old, new, repeat, reason",
    [
        ("wrong", "новый пароль 2026", None, "wrong_old"),
        (CURRENT, "новый пароль 2026", "новый пароль 2027", "mismatch"),
        (CURRENT, CURRENT, None, "same_as_old"),
        # Without the old password (a recovery), the current one is still refused, checked by its hash.
        (None, CURRENT, None, "same_as_old"),
    ],
)
def test_old_password_rules(old, new, repeat, reason):
    with pytest.raises(PasswordPolicyError) as error:
        _check(new, repeat, old=old)
    assert error.value.reason == reason


def test_the_minimum_is_the_callers():
    with pytest.raises(PasswordPolicyError) as error:
        _check("staff-11ch!", min_length=12)
    assert error.value.reason == "too_short"
    _check("staff-12ch!!", min_length=12)
