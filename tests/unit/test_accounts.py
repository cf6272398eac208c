"""Accounts: normalising identifiers (pure functions), creating accounts and checking a sign-in (database)."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import update

from idp.config import LoginSettings
from idp.config import PasswordsSettings
from idp.errors import AccountDataError
from idp.errors import InvalidCredentialsError
from idp.extensions import db
from idp.models import Account
from idp.models import ResetFlow
from idp.models.account import STATUS_BLOCKED
from idp.services import accounts
from idp.services import passwords
from idp.services.selfservice import reset

NOW = 1_800_000_000
SETTINGS = PasswordsSettings(bcrypt_rounds=4, temporary_ttl=259200)
LOCKOUT = LoginSettings(max_failures=3, lockout=900)
KEY = "a test secret key of more than thirty-two characters"
PASSWORD = "верный пароль 42"


# -- login normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("770123456", "770123456"),
        ("77-0123 456", "770123456"),
        ("  77 01 23 456  ", "770123456"),
        ("77\t01\u00a023", "770123"),  # tab, no-break space
        ("77\u20100123", "770123"),  # hyphen
        ("77\u20130123\u2014456", "770123456"),  # en dash, em dash
        ("77\u22120123", "770123"),  # minus sign
        ("77\u2015012", "77012"),  # horizontal bar
        ("ab12", "AB12"),
        ("пм-123", "ПМ123"),
        ("ёж1", "ЁЖ1"),
        ("77/ab.12", "77/AB.12"),
        ("７７０１２３", "770123"),  # fullwidth digits (NFKC)
        ("ＡＢ１", "AB1"),
        ("9" * 64, "9" * 64),
    ],
)
def test_login_is_normalised(raw, expected):
    assert accounts.normalize_login(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "- -",
        "77_0123",
        "77+0123",
        "77@01",
        "77'; DROP TABLE accounts;--",
        "<script>",
        "77\u00000123",
        "ñ123",  # Latin letters outside A-Z
        "9" * 65,  # too long once normalised
        "9 " * 65,  # 130 characters typed: refused before normalising
        None,
        770123,
    ],
)
def test_login_that_cannot_be_one_is_none(raw):
    assert accounts.normalize_login(raw) is None


def test_overlong_input_is_refused_even_if_it_would_shrink():
    shrinks_to_ten = "1-" * 5 + " " * (accounts.MAX_LOGIN_INPUT - 10 + 1)
    assert len(shrinks_to_ten) > accounts.MAX_LOGIN_INPUT
    assert accounts.normalize_login(shrinks_to_ten) is None
    assert accounts.normalize_login(shrinks_to_ten[: accounts.MAX_LOGIN_INPUT]) == "11111"


# -- phone normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+7 (916) 123-45-67",
        "89161234567",
        "8 916 123 45 67",
        "+79161234567",
        "916 123-45-67",
        "7 916 1234567",
    ],
)
def test_russian_mobile_numbers_become_e164(raw):
    assert accounts.normalize_phone(raw) == "+79161234567"


def test_foreign_number_with_country_code_is_kept():
    assert accounts.normalize_phone("+998 90 123 45 67") == "+998901234567"


@pytest.mark.parametrize(
    "raw", ["garbage", "", "12345", "+7 916 123 45 6", "+79161234567890", "+7 000 000 00 00"]
)
def test_phone_that_is_not_a_number_is_none(raw):
    assert accounts.normalize_phone(raw) is None


# -- SNILS --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["112-233-445 95", "11223344595", "112 233 445 95", "112-233-445-95"])
def test_valid_snils_is_normalised_to_digits(raw):
    assert accounts.normalize_snils(raw) == "11223344595"


@pytest.mark.parametrize(
    "raw",
    [
        "112-233-445 96",  # wrong check digits
        "112-233-445 59",
        "212-233-445 95",  # a changed digit
        "112-233-445",  # too short
        "112-233-445 955",  # too long
        "1122334459a",
        "",
    ],
)
def test_invalid_snils_is_none(raw):
    assert accounts.normalize_snils(raw) is None


def _snils_with_sum(target: int) -> str:
    """Nine digits whose weighted sum (weights 9..1) is ``target``."""
    digits = [0] * 9
    remaining = target
    for index, weight in enumerate(range(9, 0, -1)):
        digit = min(9, remaining // weight)
        digits[index] = digit
        remaining -= digit * weight
    assert remaining == 0
    return "".join(map(str, digits))


@pytest.mark.parametrize(
    "total, check", [(95, "95"), (100, "00"), (101, "00"), (102, "01"), (201, "00"), (300, "98")]
)
def test_snils_checksum_rule(total, check):
    # Sum < 100: the sum itself; 100 and 101: 00; above: sum mod 101, and 100 counts as 00.
    nine = _snils_with_sum(total)
    assert accounts.snils_checksum_ok(nine + check)
    assert accounts.normalize_snils(nine + check) == nine + check
    wrong = f"{(int(check) + 1) % 100:02d}"
    assert not accounts.snils_checksum_ok(nine + wrong)


# -- creating accounts --------------------------------------------------------------------------------


def _create(login="77-0000001", **extra):
    values = dict(
        phone="+7 (916) 123-45-67",
        surname="Рахимов",
        given_name="Алишер",
        middle_name="Бахтиёрович",
        email=None,
        snils=None,
        locale="ru",
        now=NOW,
        settings=SETTINGS,
    )
    values.update(extra)
    return accounts.create_account(db.session, login=login, **values)


def _with_password(account: Account, password: str = PASSWORD, rounds: int = 4) -> Account:
    account.password_hash = passwords.hash_password(password, rounds)
    account.password_change.state = "done"
    db.session.commit()
    return account


def _authenticate(login, password, now=NOW, settings=SETTINGS, lockout=LOCKOUT):
    """The sign-in as the login page runs it: the SMS reset's pending password is tried too."""
    return accounts.authenticate(
        db.session, login, password, now=now, settings=settings, lockout=lockout, pending=reset.Pending(KEY)
    )


def test_create_account_normalises_and_issues_a_temporary_password(app):
    with app.app_context():
        account, temporary = _create(login=" 77-0000001 ", snils="112-233-445 95", email=" Ali@Example.RU ")
        db.session.commit()
        assert account.login == "770000001"
        assert account.phone == "+79161234567"
        assert account.snils == "11223344595"
        assert account.email == "ali@example.ru"
        assert account.must_change_password is True
        assert account.temporary_password_expires_at == NOW + SETTINGS.temporary_ttl
        assert len(temporary) == 10 and set(temporary) <= set(passwords.TEMPORARY_ALPHABET)
        assert temporary not in account.password_hash
        assert passwords.verify_password(temporary, account.password_hash)
        assert account.sub and account.login not in account.sub


@pytest.mark.parametrize("second", ["770000001", "77 000 0001", "77\u20130000001"])
def test_create_account_refuses_a_duplicate_login_after_normalisation(app, second):
    with app.app_context():
        _create(login="77-0000001")
        db.session.commit()
        with pytest.raises(AccountDataError) as excinfo:
            _create(login=second)
        assert excinfo.value.field == "login"
        assert str(excinfo.value).startswith("login:")


@pytest.mark.parametrize(
    "field, values",
    [
        ("login", {"login": "77_01"}),
        ("phone", {"phone": "12345"}),
        ("phone", {"phone": "garbage"}),
        ("snils", {"snils": "112-233-445 96"}),
        ("snils", {"snils": "123"}),
        ("email", {"email": "not-an-email"}),
        ("surname", {"surname": "   "}),
        ("given_name", {"given_name": "<b>Алишер</b>"}),
    ],
)
def test_create_account_refuses_bad_data_naming_the_field(app, field, values):
    with app.app_context():
        with pytest.raises(AccountDataError) as excinfo:
            _create(**values)
        assert excinfo.value.field == field
        assert field in str(excinfo.value)


# -- authenticate -------------------------------------------------------------------------------------


def test_correct_password_signs_in_with_any_spelling_of_the_login(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        assert _authenticate("770000001", PASSWORD).id == account.id
        assert _authenticate(" 77-000-0001 ", PASSWORD).id == account.id


def test_unknown_login_is_refused(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000002", PASSWORD)


def test_invalid_login_is_refused(app):
    with app.app_context(), pytest.raises(InvalidCredentialsError):
        _authenticate("77_0000001", PASSWORD)


def test_wrong_password_is_refused_and_counted(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", PASSWORD + "!")
        assert account.failed_logins == 1


def test_blocked_account_is_refused_even_with_the_right_password(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        account.status = STATUS_BLOCKED
        db.session.commit()
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", PASSWORD)


def test_temporary_password_signs_in_until_it_expires(app):
    with app.app_context():
        account, temporary = _create()
        db.session.commit()
        expires = account.temporary_password_expires_at
        signed_in = _authenticate("770000001", temporary, now=expires - 1)
        assert signed_in.must_change_password is True
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", temporary, now=expires)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", temporary, now=expires + 86400)


def test_account_locks_after_max_failures_until_the_lockout_passes(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        for attempt in range(LOCKOUT.max_failures):
            with pytest.raises(InvalidCredentialsError):
                _authenticate("770000001", "wrong", now=NOW + attempt)
        locked_at = NOW + LOCKOUT.max_failures - 1
        assert account.locked_until == locked_at + LOCKOUT.lockout
        # The right password does not help while locked, and the error is the same.
        for now in (locked_at, locked_at + 1, locked_at + LOCKOUT.lockout - 1):
            with pytest.raises(InvalidCredentialsError):
                _authenticate("770000001", PASSWORD, now=now)
        assert _authenticate("770000001", PASSWORD, now=locked_at + LOCKOUT.lockout).id == account.id
        assert account.locked_until == 0 and account.failed_logins == 0


def test_wrong_passwords_while_locked_do_not_extend_the_lock(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        for _ in range(LOCKOUT.max_failures):
            with pytest.raises(InvalidCredentialsError):
                _authenticate("770000001", "wrong", now=NOW)
        until = account.locked_until
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "wrong", now=NOW + 10)
        assert account.locked_until == until


def test_a_success_resets_the_failure_count(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        for _ in range(LOCKOUT.max_failures - 1):
            with pytest.raises(InvalidCredentialsError):
                _authenticate("770000001", "wrong")
        _authenticate("770000001", PASSWORD)
        assert account.failed_logins == 0
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "wrong")
        assert account.locked_until == 0


def test_old_rounds_are_upgraded_at_sign_in(app):
    with app.app_context():
        account, temporary = _create()
        db.session.commit()
        assert account.password_hash.startswith("$2b$04$")
        stronger = PasswordsSettings(bcrypt_rounds=5, temporary_ttl=SETTINGS.temporary_ttl)
        _authenticate("770000001", temporary, settings=stronger)
        db.session.commit()
        stored = db.session.get(Account, account.id).password_hash
        assert stored.startswith("$2b$05$")
        assert passwords.verify_password(temporary, stored)


def test_hash_is_not_touched_on_a_failed_sign_in(app):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        before = account.password_hash
        stronger = PasswordsSettings(bcrypt_rounds=5, temporary_ttl=SETTINGS.temporary_ttl)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "wrong", settings=stronger)
        assert account.password_hash == before


# -- one bcrypt check on every path (instead of a timing test) ---------------------------------------


@pytest.fixture
def count_checks(monkeypatch):
    calls = []
    real = passwords.verify_password

    def counting(password, password_hash, **kwargs):
        calls.append(password_hash)
        return real(password, password_hash, **kwargs)

    monkeypatch.setattr("idp.services.passwords.verify_password", counting)
    return calls


def test_unknown_login_runs_exactly_one_bcrypt_check(app, count_checks):
    with app.app_context():
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000099", PASSWORD)
        assert count_checks == [passwords.dummy_hash(SETTINGS.bcrypt_rounds)]


def test_unparseable_login_runs_exactly_one_bcrypt_check(app, count_checks):
    with app.app_context():
        with pytest.raises(InvalidCredentialsError):
            _authenticate("no such login!", PASSWORD)
        assert len(count_checks) == 1


def test_every_refusal_costs_one_bcrypt_check(app, count_checks):
    with app.app_context():
        account, _ = _create()
        _with_password(account)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "wrong")
        assert len(count_checks) == 1
        account.status = STATUS_BLOCKED
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", PASSWORD)
        assert len(count_checks) == 2
        account.status = "active"
        account.locked_until = NOW + 60
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", PASSWORD)
        assert len(count_checks) == 3
        account.locked_until = 0
        _authenticate("770000001", PASSWORD)
        assert len(count_checks) == 4


def _with_pending_reset(
    account: Account, reset_password: str = "SMS2pass3x", expires: int = NOW + 3600
) -> Account:
    db.session.add(
        ResetFlow(
            account_id=account.id,
            state="sent",
            password_hash=reset.password_digest(KEY, reset_password),
            created_at=NOW - 60,
            expires_at=expires,
        )
    )
    db.session.commit()
    return account


def _reset_states(account: Account) -> list[str]:
    return list(db.session.scalars(select(ResetFlow.state).filter_by(account_id=account.id)))


def test_pending_reset_password_signs_in_once_and_forces_the_change(app):
    with app.app_context():
        account = _with_pending_reset(_with_password(_create()[0]))
        signed_in = _authenticate("770000001", "SMS2pass3x")
        assert signed_in.id == account.id and signed_in.must_change_password
        assert _reset_states(account) == ["used"]
        assert signed_in.temporary_password_expires_at == NOW + 3600
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", PASSWORD)


def test_old_password_still_works_and_voids_the_pending_reset(app):
    with app.app_context():
        account = _with_pending_reset(_with_password(_create()[0]))
        assert not _authenticate("770000001", PASSWORD).must_change_password
        assert _reset_states(account) == ["void"]
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "SMS2pass3x")


def test_old_password_voids_a_reset_still_queued_for_its_sms(app):
    with app.app_context():
        account = _with_pending_reset(_with_password(_create()[0]))
        db.session.execute(update(ResetFlow).values(state="queued"))
        db.session.commit()
        _authenticate("770000001", PASSWORD)
        assert _reset_states(account) == ["void"]


def test_a_sign_in_without_a_pending_reset_reads_no_reset_row(app):
    """Issue 12: whether a reset waits is read with the account (one statement before bcrypt), not by a
    query of its own on every sign-in."""
    with app.app_context():
        account = _with_password(_create()[0])
        db.session.add(
            ResetFlow(account_id=account.id, state="used", password_hash="x", created_at=NOW, expires_at=NOW)
        )
        db.session.commit()
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(" ".join(statement.split()))

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            _authenticate("770000001", PASSWORD)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert [s for s in seen if s.startswith("SELECT")] == [next(s for s in seen if "FROM accounts" in s)]
        assert not [s for s in seen if s.startswith(("SELECT reset_flows", "UPDATE reset_flows"))]
        assert _reset_states(account) == ["used"]


def test_a_wrong_password_costs_one_bcrypt_check_whether_or_not_a_reset_waits(app, count_checks):
    """Issue 10: a pending reset made a wrong password cost two bcrypt runs (714 ms against 310 ms), an
    oracle for "a reset is pending"; its password is checked with a keyed digest now."""
    with app.app_context():
        account = _with_password(_create()[0])
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "wrong")
        assert len(count_checks) == 1
        _with_pending_reset(account)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "wrong")
        assert len(count_checks) == 2


def test_a_locked_account_still_signs_in_with_its_sms_reset_password(app):
    """The owner's way back in is not what an attacker can shut: the lock refuses the current password,
    not the SMS reset's, and redeeming it forgets the failures."""
    with app.app_context():
        account = _with_password(_create()[0])
        for attempt in range(LOCKOUT.max_failures):
            with pytest.raises(InvalidCredentialsError):
                _authenticate("770000001", "wrong", now=NOW + attempt)
        assert account.locked_until > NOW
        _with_pending_reset(account)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", PASSWORD, now=NOW + 10)
        signed_in = _authenticate("770000001", "SMS2pass3x", now=NOW + 10)
        assert signed_in.must_change_password and account.failed_logins == 0 and account.locked_until == 0
        assert passwords.verify_password("SMS2pass3x", account.password_hash)


def test_a_pending_reset_row_from_before_the_digest_still_works(app):
    with app.app_context():
        account = _with_password(_create()[0])
        db.session.add(
            ResetFlow(
                account_id=account.id,
                state="sent",
                password_hash=passwords.hash_password("SMS2pass3x", 4),
                created_at=NOW - 60,
                expires_at=NOW + 3600,
            )
        )
        db.session.commit()
        assert _authenticate("770000001", "SMS2pass3x").must_change_password


def test_expired_pending_reset_password_is_refused(app):
    with app.app_context():
        _with_pending_reset(_with_password(_create()[0]), expires=NOW - 1)
        with pytest.raises(InvalidCredentialsError):
            _authenticate("770000001", "SMS2pass3x")
