"""The language of a page: Russian is the source language; another one only where a catalogue for it
is installed and the browser prefers it."""

from __future__ import annotations

from flask import request

from ..extensions import babel


def select_locale() -> str:
    available = ["ru"] + [str(locale) for locale in babel.list_translations() if str(locale) != "ru"]
    return request.accept_languages.best_match(available, default="ru")
