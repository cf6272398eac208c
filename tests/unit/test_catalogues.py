"""Every translation catalogue is complete and faithful to the Russian source.

Checked for each language found on disk (tests/catalogues.py), so Tajik or Kyrgyz are covered as soon as
`pybabel init` creates them: no entry untranslated or fuzzy, every plural form present, Babel's own
checkers satisfied, the same placeholders and markup as the source, messages.pot in step with the code,
a back-translation for review beside each catalogue, and SMS texts that fit two segments.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pytest
from babel.core import get_global
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.plurals import get_plural
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext

from idp.languages import duration
from idp.services.passwords import generate_temporary_password

from .. import catalogues
from ..catalogues import HINT
from ..catalogues import POT
from ..catalogues import ROOT
from ..catalogues import SOURCE_LANGUAGE
from ..helpers import settings_of

LANGUAGES = catalogues.languages()
# English is read by the same reviewers who read the Russian; every other language gets a back-translation.
BACK_TRANSLATED = [language for language in LANGUAGES if language != "en"]

# %-style (named or not) and str.format-style placeholders: whatever the code fills in must survive.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]|\{[^{}]*\}")
TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues():
    catalogues.compile_stale()


def _texts(value) -> tuple[str, ...]:
    """A message's id or string as a tuple (a plural message's already is one)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _entries(catalog) -> dict:
    return {(m.context, _texts(m.id)): m for m in catalog if m.id}


def _template() -> dict:
    return _entries(catalogues.read(POT))


def _same_entries_as_the_template(path: str) -> None:
    template, entries = _template(), _entries(catalogues.read(path))
    missing = [key[1][0] for key in template if key not in entries]
    stale = [key[1][0] for key in entries if key not in template]
    assert not missing, f"{path} lacks {missing}: {HINT}"
    assert not stale, f"{path} has entries no longer in messages.pot {stale}: {HINT}"


def _untranslated(catalog) -> list[str]:
    """Entries that are fuzzy, empty, or (plural ones) lack one of the language's forms."""
    found = []
    for message in catalog:
        if not message.id:
            continue
        strings = _texts(message.string)
        forms = catalog.num_plurals if message.pluralizable else 1
        if message.fuzzy or len(strings) != forms or not all(s.strip() for s in strings):
            found.append(_texts(message.id)[0])
    return found


def _kept(source: str, translation: str, pattern: re.Pattern) -> bool:
    return Counter(pattern.findall(source)) == Counter(pattern.findall(translation))


def test_a_plural_entry_lacking_one_of_its_forms_counts_as_untranslated():
    catalog = Catalog(locale="ru")  # three forms: 1 файл, 2 файла, 5 файлов
    catalog.add(("%(n)s файл", "%(n)s файлов"), ("%(n)s fayl", "%(n)s fayl", "%(n)s fayl"))
    catalog.add(("%(n)s день", "%(n)s дней"), ("%(n)s kun", "%(n)s kun"))
    catalog.add(("%(n)s час", "%(n)s часов"), ("%(n)s soat", "", "%(n)s soat"))
    assert _untranslated(catalog) == ["%(n)s день", "%(n)s час"]


def test_the_catalogues_are_found():
    assert {"en", "uz"} <= set(LANGUAGES), LANGUAGES
    assert os.path.exists(POT)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_has_exactly_the_entries_of_messages_pot(language):
    _same_entries_as_the_template(catalogues.catalogue_path(language))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_none_is_fuzzy(language):
    catalog = catalogues.read(catalogues.catalogue_path(language))
    assert not catalog.fuzzy, f"the header of {language}/LC_MESSAGES/messages.po is marked fuzzy"
    untranslated = _untranslated(catalog)
    assert not untranslated, f"{language}: untranslated or fuzzy: {untranslated}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plural_forms_are_the_languages_own(language):
    catalog, wanted = catalogues.read(catalogues.catalogue_path(language)), get_plural(language)
    assert (catalog.num_plurals, catalog.plural_expr) == (wanted.num_plurals, wanted.plural_expr)


@pytest.mark.parametrize("language", LANGUAGES)
def test_babel_finds_no_format_or_plural_error(language):
    """babel.messages.checkers: python_format (placeholders compatible) and num_plurals."""
    errors = [
        (_texts(m.id)[0], [str(e) for e in errs])
        for m, errs in catalogues.read(catalogues.catalogue_path(language)).check()
    ]
    assert not errors, errors


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_placeholder_and_tag_is_kept_exactly(language):
    """Stricter than Babel's checker, which lets a translation drop a named placeholder: a dropped
    %(url)s would send an SMS without its link. A text without markup stays without markup."""
    problems = []
    for message in _entries(catalogues.read(catalogues.catalogue_path(language))).values():
        source = _texts(message.id)[0]
        for string in _texts(message.string):
            if not _kept(source, string, PLACEHOLDER):
                problems.append(f"placeholders differ: {source!r} -> {string!r}")
            if not _kept(source, string, TAG):
                problems.append(f"markup differs: {source!r} -> {string!r}")
    assert not problems, "\n".join(problems)


def test_the_pot_file_is_up_to_date(tmp_path):
    fresh = tmp_path / "messages.pot"
    # The same command as `make messages`.
    cfg = os.path.join(ROOT, "babel.cfg")
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", cfg, "-k", "_l", "-o", str(fresh), ROOT])
    extracted = {(m.context, _texts(m.id)) for m in catalogues.read(str(fresh)) if m.id}
    committed = set(_template())
    assert extracted, "extraction found no messages at all"
    new = sorted(key[1][0] for key in extracted - committed)
    gone = sorted(key[1][0] for key in committed - extracted)
    assert not new and not gone, f"messages.pot is out of date (new: {new}, gone: {gone}): {HINT}"


@pytest.mark.parametrize("language", BACK_TRANSLATED)
def test_a_back_translation_is_kept_in_step_with_the_catalogue(language):
    """idp/translations/<language>/back-translation.po: the same msgids, each msgstr the translation put
    back into Russian, so a reviewer who reads no Uzbek, Tajik or Kyrgyz can compare meanings."""
    path = catalogues.back_translation_path(language)
    assert os.path.exists(path), f"{path} is missing: translate the catalogue back into Russian for review"
    _same_entries_as_the_template(path)
    back = catalogues.read(path)
    untranslated = _untranslated(back)
    assert not untranslated, f"{path}: no back-translation yet for {untranslated}"
    dropped = [
        _texts(m.id)[0]
        for m in back
        if m.id and not all(_kept(_texts(m.id)[0], string, PLACEHOLDER) for string in _texts(m.string))
    ]
    assert not dropped, f"{path}: placeholders differ in {dropped}"


# --- SMS texts ------------------------------------------------------------------------------------------

# Every text the SMS sender is given (idp/views/reset.py, idp/views/recovery.py).
SMS_TEXTS = {
    "reset": "Новый пароль личного кабинета: %(password)s. Действует %(duration)s, при входе смените его: "
    "%(url)s",
    "recovery-code": "Код восстановления: %(code)s. Действует %(duration)s. Никому его не сообщайте. "
    "Ваш логин: %(login)s",
}
# The takeover notices (idp/notifications.py), each with the time and the Migration Center's site.
NOTICE_SMS = {
    "notice-password-changed": "%(when)s пароль от кабинета изменён. "
    "Если это не вы, обратитесь в Миграционный центр: %(contact)s",
    "notice-password-reset": "%(when)s пароль от кабинета сброшен по СМС. "
    "Если это не вы, обратитесь в Миграционный центр: %(contact)s",
    "notice-password-recovered": "%(when)s пароль от кабинета задан через восстановление доступа. "
    "Не вы? Обратитесь в Миграционный центр: %(contact)s",
    "notice-temporary-password": "%(when)s оператор выдал временный пароль к кабинету. "
    "Если вы не просили, обратитесь в Миграционный центр: %(contact)s",
    "notice-login-changed": "%(when)s оператор изменил логин кабинета. "
    "Если вы не просили, обратитесь в Миграционный центр: %(contact)s",
    "notice-phone-changed": "%(when)s оператор изменил телефон кабинета. "
    "Если вы не просили, обратитесь в Миграционный центр: %(contact)s",
    "notice-signed-out-everywhere": "%(when)s выполнен выход из кабинета на всех устройствах. "
    "Не вы? Обратитесь в Миграционный центр: %(contact)s",
}
SMS_TEXTS |= NOTICE_SMS
# The longest issuer the texts are sized for (as in tests/flows/test_reset.py): 42 characters.
ISSUER = "https://lichnyi-kabinet.migrantcentr.mos.r"
GSM_SEGMENT, GSM_MULTIPART = 160, 153
UCS2_SEGMENT, UCS2_MULTIPART = 70, 67


def sms_segments(text: str) -> int:
    """How many SMS a text takes (3GPP TS 23.038 / 23.040): GSM-7 when every character is in the GSM 03.38
    alphabet (an extension character, e.g. € or {, takes two septets), UCS-2 otherwise; a message longer
    than one segment loses room to the concatenation header."""
    try:
        units, single, multipart = len(text.encode("gsm03.38")), GSM_SEGMENT, GSM_MULTIPART
    except UnicodeEncodeError:
        units, single, multipart = len(text.encode("utf-16-le")) // 2, UCS2_SEGMENT, UCS2_MULTIPART
    return 1 if units <= single else math.ceil(units / multipart)


@pytest.mark.parametrize(
    "text, segments",
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("я" * 70, 1),
        ("я" * 71, 2),
        ("я" * 134, 2),
        ("я" * 135, 3),
        ("oʻ" * 35, 1),
        ("oʻ" * 36, 2),
    ],
)
def test_sms_segments_are_counted_as_phones_count_them(text, segments):
    assert sms_segments(text) == segments


def _sms_arguments(app, language: str) -> dict[str, dict]:
    # The longest spans a text is sized for: 23 hours (the longest Russian unit word, «часа»), 59 minutes.
    with app.test_request_context():
        return {
            "reset": dict(
                password=generate_temporary_password(),
                duration=duration(23 * 3600, language),
                url=settings_of(app).server.issuer + url_for("login.login"),
            ),
            "recovery-code": dict(code="000000", duration=duration(59 * 60, language), login="7" * 12),
            # The longest date and a site as long as mc.mos.ru's.
            **{name: dict(when="31.12.2026 23:59", contact="mc.mos.ru") for name in NOTICE_SMS},
        }


def render_sms(app, language: str, name: str) -> str:
    with app.test_request_context(), force_locale(language):
        return gettext(SMS_TEXTS[name], **_sms_arguments(app, language)[name])


def test_the_sms_texts_are_the_ones_in_messages_pot():
    template = {key[1][0] for key in _template()}
    assert set(SMS_TEXTS.values()) <= template, set(SMS_TEXTS.values()) - template


def _latin_script(language: str) -> bool:
    # CLDR's likely subtags name a language's usual script: en_Latn_US, uz_Latn_UZ, tg_Cyrl_TJ.
    return "_Latn" in get_global("likely_subtags").get(language, "")


@pytest.mark.config(server={"issuer": ISSUER})
@pytest.mark.parametrize("name", SMS_TEXTS)
@pytest.mark.parametrize("language", [SOURCE_LANGUAGE, *LANGUAGES])
def test_every_sms_fits_two_segments_in_every_language(app, language, name):
    text = render_sms(app, language, name)
    segments = sms_segments(text)
    assert segments <= 2, f"{language} {name}: {segments} segments ({len(text)} characters): {text}"
    if _latin_script(language):
        try:
            text.encode("gsm03.38")
        except UnicodeEncodeError as error:
            pytest.fail(
                f"{language} {name}: {text[error.start]!r} sends the whole SMS as UCS-2, 67 characters a "
                f"segment; write it in the GSM-7 alphabet (e.g. ' for ’ or ʻ): {text}"
            )


# --- Uzbek: one spelling of oʻ and gʻ ---------------------------------------------------------------------

UZ_LETTER = "\u02bb"  # ʻ MODIFIER LETTER TURNED COMMA: oʻ, gʻ
UZ_TUTUQ = "\u02bc"  # ʼ MODIFIER LETTER APOSTROPHE: the tutuq belgisi (maʼlumot)
APOSTROPHE_LOOKALIKES = "'`\u2018\u2019\u02b9\u02bd"


def test_uzbek_pages_use_the_letters_and_sms_texts_plain_ascii():
    """Pages: oʻ gʻ with U+02BB and the tutuq with U+02BC, never a quote mark that looks alike (it would
    break the word for search and screen readers). SMS texts: o' g' in ASCII, so the SMS stays GSM-7."""
    sms = set(SMS_TEXTS.values())
    problems = []
    for message in _entries(catalogues.read(catalogues.catalogue_path("uz"))).values():
        source = _texts(message.id)[0]
        for string in _texts(message.string):
            if source in sms:
                if not string.isascii():
                    problems.append(f"SMS text not ASCII: {string!r}")
            elif any(c in string for c in APOSTROPHE_LOOKALIKES) or re.search(f"[^oOgG]{UZ_LETTER}", string):
                problems.append(f"use {UZ_LETTER} after o/g and {UZ_TUTUQ} for the tutuq: {string!r}")
            elif re.search(f"[oOgG]{UZ_TUTUQ}", string):
                problems.append(f"oʻ/gʻ take {UZ_LETTER}, not {UZ_TUTUQ}: {string!r}")
    assert not problems, "\n".join(problems)
