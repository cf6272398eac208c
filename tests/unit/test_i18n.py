"""Translations: Russian is the source language, English is a catalogue in idp/translations.

The catalogues must cover every string (`make messages` extracts, updates and compiles them), templates
must hold no Russian outside ``_()``, and the sign-in page must follow Accept-Language.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections import Counter
from glob import glob

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRANSLATIONS = os.path.join(ROOT, "idp", "translations")
POT = os.path.join(TRANSLATIONS, "messages.pot")
TEMPLATES = os.path.join(ROOT, "templates")
CATALOGUES = sorted(glob(os.path.join(TRANSLATIONS, "*", "LC_MESSAGES", "messages.po")))
HINT = "run `make messages`, then translate the new entries in idp/translations/*/LC_MESSAGES/messages.po"

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")
SEED = "Вход в личный кабинет иностранного гражданина"
EN_HEADING = "Sign in to the personal account of a foreign citizen"


def _read(path):
    with open(path, "rb") as f:
        return read_po(f)


def _texts(value) -> tuple[str, ...]:
    """A message's id or string as a tuple (plural messages already are one)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _key(message):
    return (message.context, _texts(message.id))


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues():
    """`make setup` compiles the catalogues; do it here too (only if stale) so plain `pytest` works."""
    for po in CATALOGUES:
        mo = po[: -len(".po")] + ".mo"
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        catalog = _read(po)
        # why: written aside, then renamed, so a parallel run never loads half a file.
        fd, tmp = tempfile.mkstemp(suffix=".mo", dir=os.path.dirname(po))
        try:
            with os.fdopen(fd, "wb") as f:
                write_mo(f, catalog)
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; pybabel compile would not
            os.replace(tmp, mo)
        except BaseException:
            os.unlink(tmp)
            raise


def test_an_english_catalogue_exists():
    assert os.path.join(TRANSLATIONS, "en", "LC_MESSAGES", "messages.po") in CATALOGUES
    assert os.path.exists(POT)


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.split(os.sep)[-3])
def test_every_message_is_translated_with_the_same_placeholders(po):
    template = {_key(m): m for m in _read(POT) if m.id}
    catalog = {_key(m): m for m in _read(po) if m.id}
    missing = [key[1][0] for key in template if key not in catalog]
    assert not missing, f"{po} lacks {missing}: {HINT}"
    stale = [key[1][0] for key in catalog if key not in template]
    assert not stale, f"{po} has entries no longer in messages.pot {stale}: {HINT}"
    problems = []
    for key, message in catalog.items():
        sources, strings = _texts(message.id), _texts(message.string)
        if message.fuzzy or not all(s.strip() for s in strings):
            problems.append(f"untranslated or fuzzy: {sources[0]!r}")
            continue
        wanted = Counter(PLACEHOLDER.findall(sources[0]))
        for string in strings:
            if Counter(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders differ: {sources[0]!r} -> {string!r}")
    assert not problems, "\n".join(problems)


def test_the_pot_file_is_up_to_date(tmp_path):
    fresh = tmp_path / "messages.pot"
    # The same command as `make messages`.
    cfg = os.path.join(ROOT, "babel.cfg")
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", cfg, "-k", "_l", "-o", str(fresh), ROOT])
    extracted = {_key(m) for m in _read(fresh) if m.id}
    committed = {_key(m) for m in _read(POT) if m.id}
    assert extracted, "extraction found no messages at all"
    new = sorted(key[1][0] for key in extracted - committed)
    gone = sorted(key[1][0] for key in committed - extracted)
    assert not new and not gone, f"messages.pot is out of date (new: {new}, gone: {gone}): {HINT}"


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
        ("<p>{{ _(\"Привет\") }}</p>", False),
        ("<p>{{ _('Сайт «%(name)s»', name=n) }}</p>", False),
        ("{# Русский комментарий #}<p>x</p>", False),
        ("{% trans %}Привет, {{ name }}{% endtrans %}", False),
        ("<p>{{ ngettext('%(num)d файл', '%(num)d файлов', n) }}</p>", False),
        ("<p>Привет</p>", True),
        ("<p>{{ name }} — Привет</p>", True),
        ("<input placeholder=\"Логин\">", True),
        ("{{ field(form.login, hint=\"Подсказка\") }}", True),
        ("{% set title = \"Заголовок\" %}", True),
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
    assert not hits, f"templates/{name}: wrap in {{{{ _(...) }}}} and run `make messages`: " + "; ".join(
        f"line {line}: {text}" for line, text in hits
    )


# --- the sign-in page follows Accept-Language -------------------------------------------------------


def _login_page(client, accept_language):
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    response = client.get("/login", headers=headers)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


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
