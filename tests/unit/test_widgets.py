"""The sign-in forms' lean widgets (idp/views/widgets.py) draw exactly what WTForms' own draw."""

from __future__ import annotations

import pytest
from markupsafe import Markup
from wtforms.widgets import html_params as wtforms_html_params

from idp.views import widgets
from idp.views.admin.auth import StaffLoginForm
from idp.views.login import LoginForm

ATTRIBUTES = [
    {},
    {"name": "login", "id": "login", "value": "", "required": True, "maxlength": 128},
    {"autofocus": False, "autocomplete": "username", "aria_describedby": "login-hint form-error"},
    {"value": '"><script>alert(1)</script>&amp;', "placeholder": "введите проверочный код"},
    {"value": Markup("<b>kept</b>"), "data_role": "x", "class_": "lang", "checked": True},
    {"value": None, "inputmode": "numeric", "aria-invalid": "true", "minlength": 0},
]


@pytest.mark.parametrize("attributes", ATTRIBUTES)
def test_the_attributes_are_written_as_wtforms_writes_them(attributes):
    assert str(widgets.html_params(**attributes)) == str(wtforms_html_params(**attributes))


@pytest.mark.parametrize("form_class", [LoginForm, StaffLoginForm])
def test_every_field_of_the_sign_in_forms_draws_the_same_html(app, form_class):
    with app.test_request_context("/login"):
        form = form_class(formdata=None)
        form.captcha_token.data = 'challenge-"&<'
        drawn = 0
        for field in form:
            lean = field.widget
            assert type(lean) in widgets.LEAN.values(), (field.name, type(lean))
            wtforms_widget = next(base for base, twin in widgets.LEAN.items() if twin is type(lean))()
            wtforms_widget.__dict__.update(lean.__dict__)
            for attributes in ATTRIBUTES[1:3]:
                kwargs = {k: v for k, v in attributes.items() if k != "name"}
                assert str(lean(field, **kwargs)) == str(wtforms_widget(field, **kwargs)), field.name
                drawn += 1
        assert drawn >= 2 * 5


def test_a_password_is_never_drawn_back_into_the_page(app):
    with app.test_request_context("/login"):
        form = LoginForm(formdata=None)
        form.password.data = "секрет"
        assert 'value=""' in str(form.password())
