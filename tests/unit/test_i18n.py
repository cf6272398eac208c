"""Translations: Russian is the source language; the other languages are catalogues in idp/translations.

Templates must hold no Russian outside ``_()``, Flask-Babel must offer every catalogue, and the sign-in page
must follow Accept-Language. What the catalogues hold is checked in test_catalogues.py.
"""

from __future__ import annotations

import html
import os
import re

import pytest
from babel import Locale
from babel.core import get_global

from idp.extensions import babel

from .. import catalogues

TEMPLATES = os.path.join(catalogues.ROOT, "idp", "templates")

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
SEED = "Вход в личный кабинет иностранного гражданина"
EN_HEADING = "Sign in to the personal account of a foreign citizen"
UZ_HEADING = "Xorijiy fuqaroning shaxsiy kabinetiga kirish"


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues():
    catalogues.compile_stale()


# --- templates: no Russian outside _() ---------------------------------------------------------------

_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_TRANS_BLOCK = re.compile(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", re.S)
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_STRING = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
# The literal arguments of the gettext calls: these are what the catalogues translate.
_GETTEXT_LITERALS = re.compile(
    rf"\b(?:_|gettext)\(\s*{_STRING}"
    rf"|\b(?:ngettext|pgettext)\(\s*{_STRING}\s*,\s*{_STRING}"
    rf"|\bnpgettext\(\s*{_STRING}\s*,\s*{_STRING}\s*,\s*{_STRING}"
)


def _blank(match) -> str:
    """Drop a match but keep its newlines, so line numbers still point into the template."""
    return "\n" * match.group(0).count("\n")


def untranslated_text(source: str) -> list[tuple[int, str]]:
    """(line, text) of every piece of Cyrillic that reaches the page without passing through gettext."""
    source = _COMMENT.sub(_blank, source)
    source = _TRANS_BLOCK.sub(_blank, source)
    found = []

    def tag(match):
        # Inside {{ }} / {% %}: Russian is fine only as the literal given to _() and friends.
        stripped = _GETTEXT_LITERALS.sub("", match.group(0))
        if CYRILLIC.search(stripped):
            found.append((match.start(), stripped))
        return _blank(match)

    text = _TAG.sub(tag, source)
    hits = [(source.count("\n", 0, pos) + 1, snippet.strip()) for pos, snippet in found]
    for number, line in enumerate(text.splitlines(), 1):
        if CYRILLIC.search(line):
            hits.append((number, line.strip()))
    return sorted(hits)


@pytest.mark.parametrize(
    "source, bad",
    [
        ('<p>{{ _("Привет") }}</p>', False),
        ("<p>{{ _('Сайт «%(name)s»', name=n) }}</p>", False),
        ("{# Русский комментарий #}<p>x</p>", False),
        ("{% trans %}Привет, {{ name }}{% endtrans %}", False),
        ("<p>{{ ngettext('%(num)d файл', '%(num)d файлов', n) }}</p>", False),
        ("<p>Привет</p>", True),
        ("<p>{{ name }} — Привет</p>", True),
        ('<input placeholder="Логин">', True),
        ('{{ field(form.login, hint="Подсказка") }}', True),
        ('{% set title = "Заголовок" %}', True),
    ],
)
def test_the_template_scanner(source, bad):
    assert bool(untranslated_text(source)) is bad


def _template_files():
    for folder, _dirs, files in os.walk(TEMPLATES):
        for name in sorted(files):
            if name.endswith(".html"):
                yield os.path.relpath(os.path.join(folder, name), TEMPLATES)


@pytest.mark.parametrize("name", sorted(_template_files()))
def test_templates_hold_no_untranslated_russian(name):
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as f:
        hits = untranslated_text(f.read())
    assert not hits, f"idp/templates/{name}: wrap in {{{{ _(...) }}}} and run `make messages`: " + "; ".join(
        f"line {line}: {text}" for line, text in hits
    )


# --- the sign-in page follows Accept-Language -------------------------------------------------------


# The switcher names each language in its own script (Тоҷикӣ, Кыргызча, Русский) on every page.
_SWITCHER = re.compile(r'<nav class="languages.*?</nav>', re.S)


def _login_page(client, accept_language):
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    response = client.get("/login", headers=headers)
    assert response.status_code == 200
    return _SWITCHER.sub("", html.unescape(response.get_data(as_text=True)))


@pytest.mark.parametrize("accept_language", ["en", "en-US,en;q=0.9", "de;q=1.0, en;q=0.8, ru;q=0.5"])
def test_login_page_in_english(client, accept_language):
    page = _login_page(client, accept_language)
    assert '<html lang="en">' in page
    assert f"<h1>{EN_HEADING}</h1>" in page
    assert ">Login (patent application No.)</label>" in page
    assert ">Password</label>" in page
    assert ">sign in</button>" in page
    assert "can’t sign in" in page
    assert "Multifunctional Migration Center of Moscow" in page
    assert not CYRILLIC.search(page), CYRILLIC.findall(page)


@pytest.mark.parametrize("accept_language", ["ru", "ru-RU,ru;q=0.9,en;q=0.8", None, "de", ""])
def test_login_page_in_russian(client, accept_language):
    page = _login_page(client, accept_language)
    assert '<html lang="ru">' in page
    assert f"<h1>{SEED}</h1>" in page
    assert ">Логин (№ заявления на патент)</label>" in page
    assert ">Пароль</label>" in page
    assert ">войти</button>" in page
    assert EN_HEADING not in page


def test_flask_babel_offers_every_catalogue(app):
    with app.app_context():
        offered = {str(locale) for locale in babel.list_translations()}
    assert set(catalogues.languages()) | {catalogues.SOURCE_LANGUAGE} <= offered, offered


def test_uzbek_is_the_latin_script_by_default():
    # CLDR's likely subtags: a plain "uz" (a browser's or a catalogue's) means Uzbek in Latin script.
    assert get_global("likely_subtags")["uz"] == "uz_Latn_UZ"
    # …so dates formatted for an "uz" page come out in Latin letters, not as Uzbek Cyrillic would.
    assert Locale.parse("uz").months["format"]["wide"][1] == "yanvar"
    assert Locale.parse("uz_Cyrl").months["format"]["wide"][1] == "январ"


@pytest.mark.parametrize(
    "accept_language", ["uz", "uz-UZ", "uz-Latn-UZ,uz;q=0.9,ru;q=0.8", "de, uz;q=0.7, ru;q=0.5"]
)
def test_login_page_in_uzbek(client, accept_language):
    page = _login_page(client, accept_language)
    assert '<html lang="uz">' in page
    assert f"<h1>{UZ_HEADING}</h1>" in page
    assert ">Login (patent olish uchun ariza raqami)</label>" in page
    assert ">Parol</label>" in page
    assert ">kirish</button>" in page
    assert ">kira olmayapman</a>" in page
    assert "Moskva shahar ko\u02bbp funksiyali migratsiya markazi" in page
    assert not CYRILLIC.search(page), CYRILLIC.findall(page)
