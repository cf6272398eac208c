"""Context-specific words in a new password (NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS 5.0 6.2.11): the
person's login, names and phone, and words of this service, found as substrings however they are spelt.

Both the password and each word are reduced to a *skeleton* first: NFKC, case folded,
«ё» as «е», spaces, punctuation and symbols dropped, leetspeak undone (0→o, 1 and l→i, 3→e, 4 and @→a,
5 and $→s) and the Cyrillic letters that look like Latin ones (а е о р с у х) written as those. So
«К@римов», "KARIMOV", «каримов 1990» and "rfhbvjd" (Каримов typed in the Latin layout) all hold the
skeleton of one of the surname's spellings.

A word is refused:

* of 6 characters or more: anywhere in the password («Каримов1990», "superkarimov");
* of 4 or 5: where it begins a word of the password (at the start, after a space, punctuation, a digit
  or a change of script, or at a capital letter): "Ivan2024", "ivan_petrov", "MyIvan" and "Ivanushka"
  are refused, "divan-krovat" and "college" (oleg) are not;
* of 3 letters (Ким, Али, МВД): only when it is every letter of the password ("ким12345", "Али!!!!!"),
  since three letters occur inside too many unrelated words;
* a number (the phone's national significant number and its last 7 digits, a login made of digits,
  a birth year): when the password's digits, read together, contain it ("+7 916 123-45-67", "p9161234567").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

from . import spelling

# Words of this service that people put into a password for it (in Cyrillic and Latin; each is also
# transliterated and taken in the other keyboard layout).
SERVICE_WORDS = (
    "патент",
    "мигрант",
    "миграция",
    "миграционный",
    "москва",
    "moscow",
    "мосру",
    "mosru",
    "госуслуги",
    "gosuslugi",
    "мвд",
    "мфц",
    "ммц",
    "фмс",
    "уфмс",
    "гувм",
    "сахарово",
)
# Where a word of 4-5 characters may match (see the module's docstring); 3 letters match whole only.
ANYWHERE = 6
WORD_START = 4
WHOLE = 3
# The phone's last digits that identify it on their own (a Russian subscriber number is 7 digits).
PHONE_TAIL = 7

_LEET = str.maketrans({"0": "o", "1": "i", "l": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s"})
_LOOKALIKES = str.maketrans("аеорсух", "aeopcyx")
# Russian patronymics: the father's name is as personal as the person's own (Бахтиёрович → Бахтиёр).
_PATRONYMIC = re.compile(r"(?:ович|евич|ич|овна|евна|ична|инична)$")
# Central Asian patronymic and filiation words («Бахтиёр угли») are no one's name.
_FILIATION = {"угли", "ўғли", "уғли", "огли", "оглы", "улы", "уулу", "кизи", "қизи", "гызы", "кызы", "ibn"}


@dataclass(frozen=True)
class PolicyContext:
    """What the person's password must not contain. ``birth_year`` is a hook: accounts hold no birth
    date today; a caller that knows one passes it and the check refuses the four digits."""

    login: str | None = None
    names: tuple[str, ...] = ()
    phone: str | None = None
    birth_year: int | None = None


@dataclass(frozen=True)
class _Folded:
    """A password's skeleton, where its words begin, its letters without leet, and its digits."""

    text: str
    starts: frozenset[int]
    letters: str
    digits: str


# Spaces, punctuation, symbols and modifier letters (the ʻ of Uzbek oʻ, gʻ) are dropped; letters, digits
# and the leet letters @ and $ are kept.
_DROP = re.compile(r"[^\w@$]|_|[\u02b0-\u02ff]")


def _plain(text: str) -> str:
    """Folded, without what ``_DROP`` drops, Cyrillic look-alikes as Latin letters, leet left alone."""
    return _DROP.sub("", spelling.fold(text)).translate(_LOOKALIKES)


def _fold_password(password: str) -> _Folded:
    kept: list[str] = []
    starts: set[int] = set()
    previous = ""
    previous_upper = gap = True
    for original in unicodedata.normalize("NFKC", password):
        if _DROP.match(original):
            gap = True
            continue
        for char in original.casefold().replace("ё", "е"):
            if (
                gap
                or not previous.isalpha()
                or (original.isupper() and not previous_upper)
                or spelling.is_cyrillic(char) != spelling.is_cyrillic(previous)
            ):
                starts.add(len(kept))
            kept.append(char)
            previous, previous_upper, gap = char, original.isupper(), False
    plain = "".join(kept)
    return _Folded(
        text=plain.translate(_LEET).translate(_LOOKALIKES),
        starts=frozenset(starts),
        letters="".join(char for char in plain if char.isalpha()).translate(_LOOKALIKES),
        digits="".join(char for char in plain if char.isdigit()),
    )


def _spellings(word: str) -> set[str]:
    """A word, its Latin spellings, and each as typed in the other keyboard layout."""
    forms = {spelling.fold(word), *map(spelling.fold, spelling.transliterations(word))}
    return forms | {twin for form in forms for twin in spelling.layout_twins(form)}


def _name_parts(names: tuple[str, ...]) -> set[str]:
    """Each name, each of its parts («Мухаммад Али», «Абдулла-оглы»), a patronymic's root, and a
    surname's masculine form (Каримова → Каримов)."""
    parts: set[str] = set()
    for name in names:
        # why: «ё» is kept until transliteration, which spells it "yo" as well as "e".
        folded = unicodedata.normalize("NFKC", name or "").casefold()
        pieces = [piece for piece in re.split(r"[\s\-‐-―_.]+", folded) if piece and piece not in _FILIATION]
        for piece in pieces:
            parts.add(piece)
            root = _PATRONYMIC.sub("", piece)
            if root != piece:
                parts.add(root)
            if re.search(r"(?:ова|ева|ина|ына)$", piece):
                parts.add(piece[:-1])
        if len(pieces) > 1:
            parts.add("".join(pieces))
    return parts


@dataclass(frozen=True)
class _Words:
    anywhere: frozenset[str]
    word_start: frozenset[str]
    whole: frozenset[str]


@functools.lru_cache(maxsize=4096)
def _word_skeletons(word: str) -> tuple[frozenset[str], frozenset[str]]:
    """The skeletons of a word's spellings, with and without leet (names recur: worth a cache)."""
    plain = frozenset(_plain(form) for form in _spellings(word))
    return frozenset(form.translate(_LEET) for form in plain), plain


def _classify(words: set[str]) -> _Words:
    skeletons: set[str] = set()
    whole: set[str] = set()
    for word in words:
        with_leet, without = _word_skeletons(word)
        skeletons |= with_leet
        whole |= without
    return _Words(
        anywhere=frozenset(s for s in skeletons if len(s) >= ANYWHERE),
        word_start=frozenset(s for s in skeletons if WORD_START <= len(s) < ANYWHERE),
        whole=frozenset(s for s in whole if len(s) == WHOLE),
    )


@functools.lru_cache(maxsize=1)
def _service_words() -> _Words:
    return _classify(set(SERVICE_WORDS))


def _phone_digits(phone: str | None) -> set[str]:
    if not phone:
        return set()
    try:
        national = str(phonenumbers.parse(phone, "RU").national_number)
    except phonenumbers.NumberParseException:
        national = "".join(char for char in phone if char.isdigit())
    return {national, national[-PHONE_TAIL:]} if len(national) >= PHONE_TAIL else set()


def _contains(folded: _Folded, words: _Words) -> bool:
    if any(word in folded.text for word in words.anywhere):
        return True
    for word in words.word_start:
        at = folded.text.find(word)
        while at != -1:
            if at in folded.starts:
                return True
            at = folded.text.find(word, at + 1)
    return folded.letters in words.whole


def find(password: str, context: PolicyContext) -> str | None:
    """``"personal"`` if the password holds the person's login, names, phone or birth year,
    ``"service"`` if it holds a word of this service, else None."""
    folded = _fold_password(password)
    numbers = _phone_digits(context.phone)
    texts = _name_parts(context.names)
    login = (context.login or "").strip()
    if not login.isdigit():
        texts |= _name_parts((login,))
    elif len(login) >= WORD_START:
        numbers.add(login)
    if context.birth_year:
        numbers.add(f"{context.birth_year:04d}")
    if any(number in folded.digits for number in numbers) or _contains(folded, _classify(texts)):
        return "personal"
    if _contains(folded, _service_words()):
        return "service"
    return None
