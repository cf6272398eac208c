"""The pieces of access recovery that need no HTTP: what kind of identifier was typed, how surnames
are compared, and which account (if any) a recovery may reach."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from idp.errors import RecoveryInputError
from idp.extensions import db
from idp.models import Account
from idp.models.account import STATUS_BLOCKED
from idp.models.account import fold_name as fold_surname
from idp.services.selfservice.recovery import EMAIL
from idp.services.selfservice.recovery import LOGIN
from idp.services.selfservice.recovery import PHONE
from idp.services.selfservice.recovery import SNILS
from idp.services.selfservice.recovery import find_account
from idp.services.selfservice.recovery import identify

PHONE_E164 = "+79161234567"
SNILS_OK = "11223344595"  # 112-233-445 95: the checksum of 112233445 is 95


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("alisher@example.com", (EMAIL, "alisher@example.com")),
        ("  AliSher@Example.COM ", (EMAIL, "alisher@example.com")),
        ("+7 916 123-45-67", (PHONE, PHONE_E164)),
        ("+7(916)1234567", (PHONE, PHONE_E164)),
        ("8 (916) 123-45-67", (PHONE, PHONE_E164)),
        ("89161234567", (PHONE, PHONE_E164)),
        ("9161234567", (PHONE, PHONE_E164)),
        ("916 123-45-67", (PHONE, PHONE_E164)),
        ("7 916 123 45 67", (PHONE, PHONE_E164)),
        ("112-233-445 95", (SNILS, SNILS_OK)),
        ("112-233-445-95", (SNILS, SNILS_OK)),
        ("11223344595", (SNILS, SNILS_OK)),
        (" 112 233 445 95 ", (SNILS, SNILS_OK)),
        ("77-0000001", (LOGIN, "770000001")),
        ("77 0000001", (LOGIN, "770000001")),
        ("770000001", (LOGIN, "770000001")),
        ("77-0123456/а", (LOGIN, "770123456/А")),
    ],
)
def test_identify_detects_and_normalises(typed, expected):
    assert identify(typed) == expected


@pytest.mark.parametrize(
    "typed, field, reason",
    [
        ("", "identifier", "empty"),
        ("    ", "identifier", "empty"),
        (None, "identifier", "empty"),
        ("x" * 255, "identifier", "empty"),
        ("alisher@", "identifier", "email"),
        ("a@b", "identifier", "email"),
        ("112-233-445 96", "identifier", "snils_checksum"),
        ("11223344596", "identifier", "snils_checksum"),
        # Eleven digits starting with 8 that are no valid phone are read as a SNILS, and this one is wrong.
        ("81223344595", "identifier", "snils_checksum"),
        ("<script>alert(1)</script>", "identifier", "unknown_kind"),
        ("77\x000000001", "identifier", "unknown_kind"),
        ("'; DROP TABLE accounts;--", "identifier", "unknown_kind"),
    ],
)
def test_identify_refuses_what_is_no_identifier(typed, field, reason):
    with pytest.raises(RecoveryInputError) as raised:
        identify(typed)
    assert (raised.value.field, raised.value.reason) == (field, reason)


def test_snils_formatting_wins_over_a_phone_reading():
    # 891612345 20 is a valid SNILS and, unformatted, a valid mobile number: the formatting decides.
    assert identify("891-612-345 20") == (SNILS, "89161234520")
    assert identify("89161234520") == (PHONE, "+79161234520")


@pytest.mark.parametrize("typed", ["Рахимов", "  рахимов ", "РАХИМОВ", "Рахимов\t", "рАхИмОв"])
def test_fold_surname_ignores_case_and_spaces(typed):
    assert fold_surname(typed) == fold_surname("Рахимов") == "рахимов"


def test_fold_surname_treats_yo_as_ye():
    assert fold_surname("Королёв") == fold_surname("Королев") == fold_surname("КОРОЛЁВ") == "королев"
    # The same letter written as е + combining diaeresis (as some keyboards and PDFs produce it).
    assert fold_surname("Короле\u0308в") == "королев"


def test_fold_surname_collapses_inner_spaces_but_keeps_the_words():
    assert fold_surname("Мухаммад   Али") == "мухаммад али"
    assert fold_surname("Мухаммад Али") != fold_surname("МухаммадАли")
    assert fold_surname("") == fold_surname(None) == ""


# --- find_account ---------------------------------------------------------------------------------


def _find(app, kind, value, surname):
    with app.app_context():
        account = find_account(db.session, kind, value, surname)
        return account.login if account else None


def test_find_account_by_each_identifier(app, make_account):
    make_account(login="77-0000001", email="alisher@example.com", snils="112-233-445 95")
    make_account(login="77-0000002", phone="+79031112233", surname="Иванов")
    assert _find(app, PHONE, PHONE_E164, "рахимов") == "770000001"
    assert _find(app, EMAIL, "alisher@example.com", "Рахимов") == "770000001"
    assert _find(app, SNILS, SNILS_OK, "  РАХИМОВ ") == "770000001"
    assert _find(app, LOGIN, "770000001", "Рахимов") == "770000001"
    assert _find(app, PHONE, "+79031112233", "Иванов") == "770000002"


def test_find_account_needs_the_surname_too(app, make_account):
    make_account(login="77-0000001", email="alisher@example.com")
    assert _find(app, PHONE, PHONE_E164, "Иванов") is None
    assert _find(app, EMAIL, "alisher@example.com", "") is None
    assert _find(app, PHONE, "+79031112233", "Рахимов") is None


def test_find_account_with_two_matches_finds_none(app, make_account):
    make_account(login="77-0000001")
    make_account(login="77-0000002")
    # A third account on the phone with another surname does not count as a match.
    make_account(login="77-0000003", surname="Каримова")
    assert _find(app, PHONE, PHONE_E164, "Рахимов") is None
    assert _find(app, PHONE, PHONE_E164, "Каримова") == "770000003"


def test_find_account_skips_blocked_accounts(app, make_account):
    blocked = make_account(login="77-0000001", email="alisher@example.com")
    with app.app_context():
        db.session.execute(update(Account).filter_by(id=blocked["id"]).values(status=STATUS_BLOCKED))
        db.session.commit()
    assert _find(app, EMAIL, "alisher@example.com", "Рахимов") is None
    # A blocked relative on the same phone does not make the active account ambiguous.
    make_account(login="77-0000002")
    assert _find(app, PHONE, PHONE_E164, "Рахимов") == "770000002"


def test_find_account_matches_yo_and_ye(app, make_account):
    make_account(login="77-0000001", surname="Королёв")
    assert _find(app, PHONE, PHONE_E164, "Королев") == "770000001"
    assert _find(app, PHONE, PHONE_E164, "королёв") == "770000001"
