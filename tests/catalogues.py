"""The translation catalogues as they are on disk. A language is every directory of idp/translations with
an ``LC_MESSAGES/messages.po``, so a catalogue added there (``pybabel init -l xx``) is checked by every
test that uses :func:`languages` without editing the test."""

from __future__ import annotations

import os
import tempfile
from glob import glob

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSLATIONS = os.path.join(ROOT, "idp", "translations")
POT = os.path.join(TRANSLATIONS, "messages.pot")
SOURCE_LANGUAGE = "ru"
HINT = "run `make messages`, then translate the new entries in idp/translations/*/LC_MESSAGES/messages.po"


def languages() -> list[str]:
    """The languages that have a catalogue, e.g. ``["en", "uz"]`` (Russian is the source, not a catalogue)."""
    found = glob(os.path.join(TRANSLATIONS, "*", "LC_MESSAGES", "messages.po"))
    return sorted(path.split(os.sep)[-3] for path in found)


def catalogue_path(language: str) -> str:
    return os.path.join(TRANSLATIONS, language, "LC_MESSAGES", "messages.po")


def back_translation_path(language: str) -> str:
    """The reviewers' back-translation into Russian: beside the catalogue, outside LC_MESSAGES, so that
    neither `pybabel compile` nor the package picks it up."""
    return os.path.join(TRANSLATIONS, language, "back-translation.po")


def read(path: str) -> Catalog:
    with open(path, "rb") as f:
        return read_po(f)


def compile_stale() -> None:
    """`make setup` compiles the catalogues; this does it too (only where a .mo is older than its .po),
    so that a plain `pytest` after editing a translation serves the edited text."""
    for language in languages():
        po = catalogue_path(language)
        mo = po[: -len(".po")] + ".mo"
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        catalog = read(po)
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
