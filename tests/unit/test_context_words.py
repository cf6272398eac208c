"""Context words in a new password (services/context_words.py): the person's names, login and phone,
and this service's words, found as substrings whatever the spelling, script, layout or leet."""

import pytest

from idp.services.context_words import PolicyContext
from idp.services.context_words import find
from idp.services.spelling import layout_twins
from idp.services.spelling import transliterations

KARIMOV = PolicyContext(login="770000001", names=("Каримов", "Алишер", "Бахтиёрович"), phone="+79161234567")
BAKHTIYOR = PolicyContext(login="770000002", names=("Рахимов", "Бахтиёр"), phone="+998901234567")
IVANOV = PolicyContext(login="770000003", names=("Иванов", "Иван", "Петрович"), phone="+79035550011")
KIM = PolicyContext(login="770000004", names=("Ким", "Ли", "Ана"), phone="+79035550022")


@pytest.mark.parametrize(
    "context, password",
    [
        # The three examples of issue 14.
        (KARIMOV, "Каримов1990"),
        (BAKHTIYOR, "Бахтиёр!"),
        (IVANOV, "Иванов12"),
        # Transliterated: passport (ICAO), older passport, Uzbek Latin, informal.
        (KARIMOV, "karimov1990"),
        (BAKHTIYOR, "bakhtiyor77"),
        (BAKHTIYOR, "Bakhtier2024"),
        (BAKHTIYOR, "baxtiyor_2000"),
        (BAKHTIYOR, "bahtiyor!!"),
        (BAKHTIYOR, "Бахтиёржон"),
        # Typed in the other keyboard layout, both ways.
        (KARIMOV, "rfhbvjd1990"),
        (BAKHTIYOR, ",f[nbth2020"),
        (KARIMOV, "лфкшьщм1990"),
        # Leet, spaces, punctuation, fullwidth letters, ё written е.
        (KARIMOV, "K@r1m0v!!"),
        (IVANOV, "1v4n0v-12"),
        (KARIMOV, "к а р и м о в 90"),
        (KARIMOV, "ＫＡＲＩＭＯＶ７７"),
        (BAKHTIYOR, "Бахтиер2024"),
        (KARIMOV, "к@рим0в1990"),
        # The given name, the patronymic and its root, the father's name.
        (KARIMOV, "alisher2020"),
        (KARIMOV, "Бахтиёрович1"),
        (KARIMOV, "bakhtiyor123"),
        # A name of 4-5 letters where a word of the password begins.
        (IVANOV, "Ivan2024!"),
        (IVANOV, "ivan_petrovich"),
        (IVANOV, "MyIvanPass"),
        (IVANOV, "ivanushka77"),
        (IVANOV, "2024ivan"),
        # A name of 3 letters when it is every letter of the password.
        (KIM, "ким12345"),
        (KIM, "K.I.M.2024!"),
        # The login and the phone by their digits.
        (KARIMOV, "77-0000001"),
        (KARIMOV, "pass770000001"),
        (KARIMOV, "+7 916 123-45-67"),
        (KARIMOV, "x1234567y!"),
        (BAKHTIYOR, "90 123 45 67 xyz"),
    ],
)
def test_personal_words_are_refused_however_they_are_spelt(context, password):
    assert find(password, context) == "personal"


@pytest.mark.parametrize(
    "password",
    [
        "mypatent2024",
        "Патент123",
        "москва2024",
        "Moskva!!77",
        "vjcrdf2024",
        "mosru.ru!",
        "gosuslugi1",
        "Госуслуги!",
        "мвд12345",
        "МФЦ-2024!",
        "migrant2024",
        "сахарово1",
    ],
)
def test_service_words_are_refused(password):
    assert find(password, KARIMOV) == "service"


@pytest.mark.parametrize(
    "context, password",
    [
        # "ivan" inside unrelated words does not begin a word of the password.
        (IVANOV, "divan-krovat-2024"),
        (IVANOV, "DIVAN-KROVAT-2024"),
        (IVANOV, "мой диван у окна"),
        (IVANOV, "privatnyi sektor"),
        # Three letters inside longer words.
        (KIM, "kimono and kimchi"),
        (KIM, "анаконда в саду"),
        # Not the person's words at all.
        (KARIMOV, "correct horse battery staple"),
        (KARIMOV, "жёлтый трамвай у реки"),
        (KARIMOV, "kompetentnyi specialist"),
        # Digits that are not the phone's.
        (KARIMOV, "lodka 9161 i 234"),
    ],
)
def test_unrelated_passwords_pass(context, password):
    assert find(password, context) is None


def test_birth_year_is_refused_only_when_known():
    assert find("lodka1990lodka", KARIMOV) is None
    known = PolicyContext(login="770000001", names=("Каримов",), phone="+79161234567", birth_year=1990)
    assert find("lodka1990lodka", known) == "personal"


def test_a_feminine_surname_also_refuses_the_masculine_form():
    karimova = PolicyContext(names=("Каримова", "Дилноза"))
    assert find("karimov2024", karimova) == "personal"
    assert find("Каримова!", karimova) == "personal"


def test_filiation_words_are_not_names():
    uzbek = PolicyContext(names=("Рахимов", "Бахтиёр", "Алишер угли"))
    assert find("ugli-i-ugol'", uzbek) is None
    assert find("alisher2020", uzbek) == "personal"


def test_spellings_cover_the_schemes_people_use():
    assert {"bakhtier", "bakhtiyor", "baxtiyor", "bahtiyor"} <= set(transliterations("Бахтиёр"))
    assert transliterations("Иванов")[0] == "ivanov"
    assert {"evgenii", "yevgeniy", "evgeny"} <= set(transliterations("Евгений"))
    assert {"dzhamshed", "jamshed"} <= set(transliterations("Джамшед"))
    assert {"oktam", "uktam"} <= set(transliterations("Ўктам"))
    assert {"iuliia", "yuliya"} <= set(transliterations("Юлия"))
    assert transliterations("Karimov") == ["karimov"]
    assert layout_twins("пароль") == {"gfhjkm"}
    assert layout_twins("qwerty") == {"йцукен"}
    assert "любовь" in layout_twins("k.,jdm")
