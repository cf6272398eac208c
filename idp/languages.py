"""The languages of the pages, SMS, e-mail and the printed slip: Russian (the source), then every catalogue
installed in idp/translations (uz in Latin script, tg, ky, en). Used by the page's language selection
(views/locale.py), discovery's ``ui_locales_supported``, the staff console and the CLI."""

from __future__ import annotations

from babel.units import format_unit
from flask_babel import get_babel

from .extensions import babel

SOURCE = "ru"
# Each language names itself, in its own script: a person who reads no Russian finds theirs.
NAMES = {
    "uz": "Oʻzbekcha",  # oʻ with U+02BB, as the Uzbek catalogue writes it
    "tg": "Тоҷикӣ",
    "ky": "Кыргызча",
    "ru": "Русский",
    "en": "English",
}


# The catalogues installed, per set of translation directories: they do not change while the process
# runs, and listing them reads the directories (a page asked this up to eight times a sign-in, issue 12).
_INSTALLED: dict[tuple[str, ...], tuple[str, ...]] = {}


def available() -> list[str]:
    """Russian and every installed catalogue, in the switcher's order (needs an app context)."""
    directories = tuple(get_babel().translation_directories)
    found = _INSTALLED.get(directories)
    if found is None:
        installed = {str(locale) for locale in babel.list_translations()} | {SOURCE}
        ordered = [code for code in NAMES if code in installed]
        found = _INSTALLED[directories] = (*ordered, *sorted(installed - set(ordered)))
    return list(found)


def name_of(code: str) -> str:
    return NAMES.get(code, code)


# Tajik's units in full: CLDR (Babel 2.x) has only "h", "min", "d" for tg, and abbreviations are what a
# second-language reader stumbles on. Tajik nouns after a numeral stay singular.
_TAJIK_UNITS = {"duration-day": "рӯз", "duration-hour": "соат", "duration-minute": "дақиқа"}


def duration(seconds: int, language: str) -> str:
    """A span in words, with the number's plural form, never an abbreviation: «2 часа», «15 минут»,
    «3 дня» (ru), «24 soat» (uz), «72 hours» (en). Whole days when it is whole days, else whole hours
    (if whole hours), else minutes."""
    if seconds % 86400 == 0:
        value, unit = seconds // 86400, "duration-day"
    elif seconds % 3600 == 0:
        value, unit = seconds // 3600, "duration-hour"
    else:
        value, unit = max(1, round(seconds / 60)), "duration-minute"
    if language == "tg":
        return f"{value} {_TAJIK_UNITS[unit]}"
    return format_unit(value, unit, length="long", locale=language)


def best_of(tags: str | None, languages: list[str] | None = None) -> str | None:
    """The first language of a space-separated list of BCP 47 tags (OIDC ``ui_locales``) that the pages
    are in (``languages``, or those installed); a tag counts by its primary subtag (``uz-Latn-UZ`` is
    ``uz``). None when none is."""
    languages = available() if languages is None else languages
    for tag in (tags or "").split()[:10]:
        primary = tag.split("-")[0].split("_")[0].lower()
        if primary in languages:
            return primary
    return None
