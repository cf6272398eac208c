"""The sign-in form's inputs drawn without WTForms' per-attribute ``Markup.format`` (issue 12).

WTForms' ``html_params`` escapes each attribute through ``Markup.format``, about 60 µs for an input:
a quarter of the sign-in page, which every sign-in draws. ``html_params`` below writes the very same
attributes (sorted by name, ``True`` bare, ``False`` left out, values escaped by MarkupSafe) with one
f-string each; ``LeanMeta`` gives a form's text, password, hidden and checkbox fields these widgets in
place of WTForms' own. ``tests/unit/test_widgets.py`` checks that both draw the same HTML.
"""

from __future__ import annotations

from markupsafe import Markup
from markupsafe import escape
from wtforms.meta import DefaultMeta
from wtforms.widgets.core import CheckboxInput
from wtforms.widgets.core import HiddenInput
from wtforms.widgets.core import PasswordInput
from wtforms.widgets.core import TextInput
from wtforms.widgets.core import clean_key


def html_params(**kwargs) -> Markup:
    """``wtforms.widgets.html_params``, the same output for the same arguments."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            params.append(clean_key(key))
        elif value is not False:
            # MarkupSafe escapes the double quote too (&#34;): the value cannot end the attribute.
            params.append(f'{clean_key(key)}="{escape(value)}"')
    return Markup(" ".join(params))


class LeanTextInput(TextInput):
    html_params = staticmethod(html_params)


class LeanPasswordInput(PasswordInput):
    html_params = staticmethod(html_params)


class LeanHiddenInput(HiddenInput):
    html_params = staticmethod(html_params)


class LeanCheckboxInput(CheckboxInput):
    html_params = staticmethod(html_params)


# WTForms' widget classes (exactly these, not subclasses) and their lean twins.
LEAN = {
    TextInput: LeanTextInput,
    PasswordInput: LeanPasswordInput,
    HiddenInput: LeanHiddenInput,
    CheckboxInput: LeanCheckboxInput,
}


def lean(widget):
    """The lean twin of ``widget`` with its settings (a password input's ``hide_value``), or ``widget``."""
    twin = LEAN.get(type(widget))
    if twin is None:
        return widget
    copy = twin.__new__(twin)
    copy.__dict__.update(widget.__dict__)
    return copy


class LeanMeta(DefaultMeta):
    """A form's ``Meta`` mix-in: every field it binds draws with its lean widget."""

    def bind_field(self, form, unbound_field, options):
        field = super().bind_field(form, unbound_field, options)
        field.widget = lean(field.widget)
        return field
