"""Password hashing: HMAC-SHA-256 pre-hash then bcrypt, NFKC, tolerant verification, temporary passwords."""

from __future__ import annotations

import bcrypt
import pytest

from idp.services import passwords

ROUNDS = 4  # the cheapest bcrypt cost: these tests are about correctness, not strength

CYRILLIC_64 = "пароль" * 10 + "ёжик"  # 64 characters, 128 bytes of UTF-8


def test_long_cyrillic_password_hashes_and_verifies():
    assert len(CYRILLIC_64) == 64 and len(CYRILLIC_64.encode("utf-8")) == 128
    stored = passwords.hash_password(CYRILLIC_64, ROUNDS)
    assert stored.startswith("$2b$04$")
    assert passwords.verify_password(CYRILLIC_64, stored)


def test_bcrypt_alone_would_refuse_such_a_password():
    # The reason for the pre-hash: bcrypt 5 raises on input beyond 72 bytes (older versions truncated it).
    with pytest.raises(ValueError):
        bcrypt.hashpw(CYRILLIC_64.encode("utf-8"), bcrypt.gensalt(ROUNDS))


def test_passwords_differing_only_after_byte_72_do_not_match():
    # Characters 0-39 are 80 bytes: the two passwords share their first 72 bytes and more.
    other = CYRILLIC_64[:40] + "Я" + CYRILLIC_64[41:]
    assert other.encode("utf-8")[:72] == CYRILLIC_64.encode("utf-8")[:72]
    assert other != CYRILLIC_64
    stored = passwords.hash_password(CYRILLIC_64, ROUNDS)
    assert not passwords.verify_password(other, stored)
    assert not passwords.verify_password(CYRILLIC_64[:-1], stored)


def test_ascii_password_beyond_72_bytes_is_not_truncated():
    long = "a" * 100
    stored = passwords.hash_password(long, ROUNDS)
    assert passwords.verify_password(long, stored)
    assert not passwords.verify_password("a" * 72, stored)
    assert not passwords.verify_password("a" * 99 + "b", stored)


@pytest.mark.parametrize(
    "typed, stored_as",
    [
        ("ｐａｓｓｗｏｒｄ１２３", "password123"),  # fullwidth letters and digits
        ("ﬁle-pass", "file-pass"),  # the "fi" ligature
        ("A\u030angstr\u00f6m\u00a0x", "\u00c5ngstr\u00f6m x"),  # decomposed Å, no-break space
        ("\u212bngstr\u00f6m", "\u00c5ngstr\u00f6m"),  # ANGSTROM SIGN
    ],
)
def test_nfkc_equivalent_passwords_match(typed, stored_as):
    stored = passwords.hash_password(stored_as, ROUNDS)
    assert passwords.verify_password(typed, stored)
    assert passwords.verify_password(stored_as, passwords.hash_password(typed, ROUNDS))


def test_case_is_not_normalised():
    stored = passwords.hash_password("Password123", ROUNDS)
    assert not passwords.verify_password("password123", stored)


def test_wrong_password_does_not_verify():
    stored = passwords.hash_password("correct horse", ROUNDS)
    assert passwords.verify_password("correct horse", stored)
    assert not passwords.verify_password("correct horsf", stored)
    assert not passwords.verify_password("", stored)


def test_hash_is_salted():
    assert passwords.hash_password("same", ROUNDS) != passwords.hash_password("same", ROUNDS)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$2b$04$short",
        "$2b$04$" + "x" * 60,
        "$1$abcdefgh$0123456789abcdefghijkl",
        "хеш-не-ascii",
        "$2b$04$" + "Ж" * 53,
    ],
)
def test_malformed_stored_hash_is_a_failed_check_not_an_exception(stored):
    assert passwords.verify_password("anything", stored) is False


def test_lone_surrogate_in_password_does_not_raise():
    stored = passwords.hash_password("pass\ud800word", ROUNDS)
    assert passwords.verify_password("pass\ud800word", stored)
    assert not passwords.verify_password("password", stored)


def test_needs_rehash_compares_rounds():
    stored = passwords.hash_password("x", ROUNDS)
    assert not passwords.needs_rehash(stored, ROUNDS)
    assert passwords.needs_rehash(stored, 5)
    assert passwords.needs_rehash(stored, 12)


@pytest.mark.parametrize("stored", ["", "garbage", "$2b$04$short", "$argon2id$v=19$m=65536,t=3,p=4$abc$def"])
def test_needs_rehash_for_anything_that_is_not_a_bcrypt_hash(stored):
    assert passwords.needs_rehash(stored, ROUNDS)


def test_temporary_password_alphabet_has_no_ambiguous_characters():
    assert not set("0Oo1lI") & set(passwords.TEMPORARY_ALPHABET)
    assert len(set(passwords.TEMPORARY_ALPHABET)) == len(passwords.TEMPORARY_ALPHABET)


def test_temporary_passwords_are_ten_unambiguous_characters():
    seen = set()
    for _ in range(500):
        temporary = passwords.generate_temporary_password()
        assert len(temporary) == 10
        assert set(temporary) <= set(passwords.TEMPORARY_ALPHABET)
        assert not set(temporary) & set("0Oo1lI")
        seen.add(temporary)
    assert len(seen) == 500  # ~58 bits each: a repeat here would mean a broken generator


def test_temporary_passwords_use_the_whole_alphabet():
    used = set("".join(passwords.generate_temporary_password() for _ in range(300)))
    assert used == set(passwords.TEMPORARY_ALPHABET)


def test_dummy_hash_is_cached_per_rounds():
    first = passwords.dummy_hash(ROUNDS)
    assert passwords.dummy_hash(ROUNDS) is first
    assert first.startswith("$2b$04$")
    assert not passwords.needs_rehash(first, ROUNDS)
    other = passwords.dummy_hash(5)
    assert other.startswith("$2b$05$") and other != first
    assert passwords.dummy_hash.cache_info().hits >= 1
