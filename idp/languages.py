"""The languages of the pages, SMS, e-mail and the printed slip: Russian (the source), then every catalogue
installed in idp/translations (uz in Latin script, tg, ky, en). Used by the page's language selection
(views/locale.py), discovery's ``ui_locales_supported``, the staff console and the CLI."""

from __future__ import annotations

from .extensions import babel

SOURCE = "ru"
# Each language names itself, in its own script: a person who reads no Russian finds theirs.
NAMES = {
    "uz": "O‘zbekcha",
    "tg": "Тоҷикӣ",
    "ky": "Кыргызча",
    "ru": "Русский",
    "en": "English",
}


def available() -> list[str]:
    """Russian and every installed catalogue, in the switcher's order (needs an app context)."""
    installed = {str(locale) for locale in babel.list_translations()} | {SOURCE}
    ordered = [code for code in NAMES if code in installed]
    return ordered + sorted(installed - set(ordered))


def name_of(code: str) -> str:
    return NAMES.get(code, code)


def best_of(tags: str | None) -> str | None:
    """The first language of a space-separated list of BCP 47 tags (OIDC ``ui_locales``) that the pages
    are in; a tag counts by its primary subtag (``uz-Latn-UZ`` is ``uz``). None when none is."""
    languages = available()
    for tag in (tags or "").split()[:10]:
        primary = tag.split("-")[0].split("_")[0].lower()
        if primary in languages:
            return primary
    return None
