"""How people write the same word several ways: case and Unicode forms, the other keyboard layout, and
Cyrillic in Latin letters. Shared by the password blocklist (and its build script) and the context-word
check, so that a password and the words it is compared with are always spelt out the same way.
"""

from __future__ import annotations

import itertools
import unicodedata

# The same physical keys on the US (QWERTY) and the Russian (ЙЦУКЕН) layout, unshifted and shifted:
# «пароль» typed without switching the layout is "gfhjkm", and "qwerty" is «йцукен». Text is case folded
# before it is swapped, so capitals need no entry, but shifted punctuation does ("{" is «Х»).
_KEY_PAIRS = (
    "`ё qй wц eу rк tе yн uг iш oщ pз [х ]ъ aф sы dв fа gп hр jо kл lд ;ж 'э zя xч cс vм bи nт mь ,б .ю /."
    ' ~ё {х }ъ :ж "э <б >ю ?, @" #№ $; ^: &? |/'
)
_PAIRS_LIST = [(pair[0], pair[1]) for pair in _KEY_PAIRS.split()]
_TO_RUSSIAN_KEYS = str.maketrans(dict(_PAIRS_LIST))
# why: several Latin keys give one Russian letter ("[" and "{" are both «х»); the unshifted key wins.
_TO_LATIN_KEYS = str.maketrans({russian: latin for latin, russian in reversed(_PAIRS_LIST)})

# Latin spellings of each Cyrillic letter, the union of the schemes people actually meet: the Russian
# passport (ICAO Doc 9303 table, MVD order 2013: ё→e, й→i, х→kh, ц→ts, ю→iu, я→ia, ъ→ie), the older
# passport and BGN/PCGN habits (yo, y, yu, ya), GOST 7.79-2000 system B (j, x, cz, shh), Uzbek Latin
# (x for х, h for ҳ, q for қ, o‘/g‘ for ў/ғ without the mark, j for ж, ye/yo) and Tajik and Kyrgyz
# (ҷ→j, ғ→gh, ң→ng, ө→o, ү→u). The first spelling of each letter is the passport's.
_LATIN = {
    "а": ("a",),
    "б": ("b",),
    "в": ("v",),
    "г": ("g",),
    "д": ("d",),
    "е": ("e",),
    "ё": ("e", "yo", "io"),
    "ж": ("zh", "j"),
    "з": ("z",),
    "и": ("i",),
    "й": ("i", "y", "j"),
    "к": ("k",),
    "л": ("l",),
    "м": ("m",),
    "н": ("n",),
    "о": ("o",),
    "п": ("p",),
    "р": ("r",),
    "с": ("s",),
    "т": ("t",),
    "у": ("u",),
    "ф": ("f",),
    "х": ("kh", "x", "h"),
    "ц": ("ts", "c"),
    "ч": ("ch",),
    "ш": ("sh",),
    "щ": ("shch", "sch", "sh"),
    "ъ": ("", "ie"),
    "ы": ("y", "i"),
    "ь": ("",),
    "э": ("e",),
    "ю": ("iu", "yu", "ju", "u"),
    "я": ("ia", "ya", "ja"),
    # Uzbek, Tajik, Kyrgyz and Kazakh letters.
    "ў": ("o", "u"),
    "қ": ("q", "k"),
    "ғ": ("g", "gh"),
    "ҳ": ("h", "kh", "x"),
    "ҷ": ("j", "dzh", "ch"),
    "ӣ": ("i",),
    "ӯ": ("u",),
    "ң": ("ng", "n"),
    "ө": ("o",),
    "ү": ("u",),
    "ә": ("a",),
    "і": ("i",),
    "ұ": ("u",),
    "һ": ("h",),
}
# Letter pairs spelt as one sound: «Джамшед» is Jamshed as often as Dzhamshed, «Максим» Maxim.
_PAIRS = {"дж": ("dzh", "j", "dj"), "кс": ("ks", "x")}
# «Евгений» is Evgenii in a passport and Yevgeniy or Evgeny elsewhere.
_ENDINGS = {"ий": ("ii", "iy", "ij", "y", "i"), "ый": ("yi", "iy", "y")}
_VOWELS = set("аеёиоуыэюяўӣӯөүәі")
# A Cyrillic name has a few dozen spellings at most; the cap only guards against pathological input.
MAX_SPELLINGS = 256


def fold(text: str) -> str:
    """The form every comparison starts from: NFKC (fullwidth and compatibility characters become the
    plain ones), case folded, and «ё» written «е» as most people type it."""
    return unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")


def layout_twins(text: str) -> set[str]:
    """``text`` as typed with the keyboard in the other layout, both ways (without ``text`` itself)."""
    return {
        twin for twin in (text.translate(_TO_LATIN_KEYS), text.translate(_TO_RUSSIAN_KEYS)) if twin != text
    }


def is_cyrillic(char: str) -> bool:
    return "\u0400" <= char <= "\u04ff"


def transliterations(word: str) -> list[str]:
    """Latin spellings of a Cyrillic ``word`` (NFKC, case folded, «ё» kept), passport spelling first;
    a word without Cyrillic letters is returned as it is."""
    word = unicodedata.normalize("NFKC", word).casefold()
    if not any(is_cyrillic(char) for char in word):
        return [word]
    choices: list[tuple[str, ...]] = []
    i = 0
    while i < len(word):
        pair = word[i : i + 2]
        if pair in _ENDINGS and i + 2 == len(word):
            choices.append(_ENDINGS[pair])
            i += 2
            continue
        if pair in _PAIRS:
            choices.append(_PAIRS[pair])
            i += 2
            continue
        char = word[i]
        options = _LATIN.get(char, (char,))
        # «е» at the start of a word or after a vowel is "ye" in Uzbek and informal spelling (Yelena).
        if char == "е" and (i == 0 or word[i - 1] in _VOWELS or word[i - 1] in "ъь"):
            options = ("e", "ye")
        choices.append(options)
        i += 1
    spellings = ("".join(parts) for parts in itertools.product(*choices))
    return list(dict.fromkeys(itertools.islice(spellings, MAX_SPELLINGS)))
