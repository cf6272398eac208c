"""Operators at the counter: find an account, create one from an application (with a printable slip),
issue a temporary password, change the login or the phone, block, unblock, lift a lock, read the
history. Admins may do the same; migrants' permanent passwords are never shown or set here."""

from __future__ import annotations

import functools

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ... import messages
from ...errors import AccountDataError
from ...extensions import db
from ...languages import available
from ...languages import name_of
from ...models import Account
from ...runtime import current
from ...services import account_admin
from ...services import audit
from .common import OPERATOR_ROLES
from .common import ActionForm
from .common import ConfirmForm
from .common import bp
from .common import confirmed
from .common import ctx
from .common import current_time
from .common import settings
from .common import staff_required
from .common import when
from .labels import event_rows

STATUS = {"active": _l("действует"), "blocked": _l("заблокирована")}


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Номер заявления, телефон или фамилия"), validators=[Length(max=128)])


class AccountForm(FlaskForm):
    login = StringField(_l("Логин (№ заявления на патент)"), validators=[InputRequired(), Length(max=128)])
    surname = StringField(_l("Фамилия"), validators=[InputRequired(), Length(max=100)])
    given_name = StringField(_l("Имя"), validators=[InputRequired(), Length(max=100)])
    middle_name = StringField(_l("Отчество (если есть)"), validators=[Length(max=100)])
    phone = StringField(_l("Телефон из заявления"), validators=[InputRequired(), Length(max=32)])
    email = StringField(_l("Электронная почта (если есть)"), validators=[Length(max=254)])
    snils = StringField(_l("СНИЛС (если есть)"), validators=[Length(max=20)])
    locale = SelectField(_l("Язык писем и СМС"), default="ru")


class LoginChangeForm(FlaskForm):
    login = StringField(
        _l("Новый логин (№ нового заявления на патент)"), validators=[InputRequired(), Length(max=128)]
    )
    reason = StringField(_l("Причина"), validators=[InputRequired(), Length(max=500)])


class PhoneChangeForm(FlaskForm):
    phone = StringField(_l("Новый телефон"), validators=[InputRequired(), Length(max=32)])
    reason = StringField(_l("Причина"), validators=[InputRequired(), Length(max=500)])


def _account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404)
    return account


def _language_choices() -> list[SelectChoice]:
    return [SelectChoice(code, name_of(code)) for code in available()]


def _show_error(form, error: AccountDataError) -> str:
    """Attach the service's complaint to its field; return the field's name, which gets the focus."""
    message = messages.ACCOUNT_ERRORS.get((error.field, error.reason))
    if message is None:
        message = (
            messages.NAME_ERROR
            if error.field in ("surname", "given_name", "middle_name")
            else messages.CHECK_FIELD
        )
    field = getattr(form, error.field, None)
    if field is not None:
        field.errors = [str(message)]
        return field.name
    return ""


def _first_error(form) -> str:
    return next((field.name for field in form if field.errors), "")


@bp.route("/accounts/")
@staff_required(*OPERATOR_ROLES)
def accounts():
    form = SearchForm(request.args)
    found = account_admin.search(db.session, form.q.data or "") if form.q.data else []
    rows = [
        {
            "url": url_for("admin.account", account_id=account.id),
            "login": account.login,
            "name": account.full_name,
            "phone": account.phone,
            "status": STATUS.get(account.status, account.status),
        }
        for account in found
    ]
    return render_template("admin/accounts.html", form=form, rows=rows, searched=bool(form.q.data))


@bp.route("/accounts/new", methods=["GET", "POST"])
@staff_required(*OPERATOR_ROLES)
def account_new():
    form = AccountForm()
    form.locale.choices = _language_choices()
    if not form.validate_on_submit():
        return render_template("admin/account_new.html", form=form, focus=_first_error(form))
    try:
        account, temporary = account_admin.create(
            db.session,
            ctx(),
            settings=settings().passwords,
            sms_countries=settings().sms.allowed_country_codes,
            login=form.login.data,
            phone=form.phone.data,
            surname=form.surname.data,
            given_name=form.given_name.data,
            middle_name=form.middle_name.data,
            email=form.email.data,
            snils=form.snils.data,
            locale=form.locale.data,
        )
    except AccountDataError as error:
        db.session.rollback()
        return render_template("admin/account_new.html", form=form, focus=_show_error(form, error))
    db.session.commit()
    return _issued(account, temporary, _("Учётная запись создана"))


def _issued(account: Account, temporary: str, heading: str):
    """The temporary password, shown this once, with the slip the operator prints (one A5 page)."""
    return render_template(
        "admin/issued.html",
        heading=heading,
        account_url=url_for("admin.account", account_id=account.id),
        login=account.login,
        name=account.full_name,
        temporary=temporary,
        expires=when(account.temporary_password_expires_at),
        slip=_slip(account, temporary),
    )


def _slip(account: Account, temporary: str) -> dict:
    """The slip's text in the account's language, whatever the operator's: the person takes it home, and
    the sign-in page will speak that language too (the switcher's choice is saved on the account)."""
    url = settings().staff.cabinet_url
    with force_locale(account.locale):
        return {
            "lang": account.locale,
            "title": _("Личный кабинет иностранного гражданина"),
            "rows": [
                (_("Логин (№ заявления на патент)"), account.login),
                (_("Временный пароль"), temporary),
                (_("Пароль действует до"), when(account.temporary_password_expires_at)),
                (_("Адрес личного кабинета"), url),
            ],
            "steps_title": _("Как войти"),
            "steps": [
                _("Откройте адрес личного кабинета: %(url)s.", url=url),
                _(
                    "Введите Логин и Пароль, выданные оператором Миграционного центра при приеме заявления о "
                    "выдаче патента, и нажмите кнопку «войти»."
                ),
                _(
                    "После авторизации система запросит сменить выданный оператором пароль. "
                    "Для этого введите временный пароль в поле «Старый пароль». "
                    "Придумайте новый пароль и введите его в поле «Новый пароль», "
                    "а также в поле «Повторно введите новый пароль». Далее нажмите кнопку «сменить пароль»."
                ),
            ],
            "note": _(
                "Никому не сообщайте пароль. Если пароль не подходит или срок истёк, обратитесь в "
                "Миграционный центр."
            ),
        }


@bp.route("/accounts/<int:account_id>")
@staff_required(*OPERATOR_ROLES)
def account(account_id: int):
    return _card(_account(account_id))


def _card(
    account: Account, *, confirm_form=None, block_form=None, error: str | None = None, status: int = 200
):
    now = current_time()
    card = {
        "id": account.id,
        "login": account.login,
        "name": account.full_name,
        "phone": account.phone,
        "email": account.email or "—",
        "snils": _("указан") if account.snils else _("не указан"),
        "locale": name_of(account.locale),
        "status": STATUS.get(account.status, account.status),
        "blocked": not account.is_active,
        "locked_until": when(account.locked_until) if account.locked_until > now else "",
        "failed_logins": account.failed_logins,
        "temporary": when(account.temporary_password_expires_at) if account.must_change_password else "",
        "created": when(account.created_at),
        "resets_today": account_admin.resets_today(db.session, account, now=now, settings=settings()),
        "reset_limit": settings().limits.daily_limit,
    }
    history = event_rows(audit.account_history(db.session, account.id))
    return render_template(
        "admin/account.html",
        card=card,
        history=history,
        password_form=confirm_form or ConfirmForm(prefix="password"),
        block_form=block_form or ConfirmForm(prefix="block"),
        unlock_form=ActionForm(prefix="unlock"),
        error=error,
    ), status


@bp.route("/accounts/<int:account_id>/temporary-password", methods=["POST"])
@staff_required(*OPERATOR_ROLES)
def account_temporary_password(account_id: int):
    account = _account(account_id)
    form = ConfirmForm(prefix="password")
    if not confirmed(form):
        return _card(account, confirm_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    temporary = account_admin.issue_temporary_password(
        db.session,
        ctx(),
        account,
        settings=settings().passwords,
        events=current().events,
        reason=form.reason.data,
    )
    db.session.commit()
    return _issued(account, temporary, _("Выдан новый временный пароль"))


@bp.route("/accounts/<int:account_id>/login", methods=["GET", "POST"])
@staff_required(*OPERATOR_ROLES)
def account_login(account_id: int):
    account = _account(account_id)
    return _change_page(
        account,
        LoginChangeForm(),
        "login",
        account_admin.change_login,
        done=_("Логин изменён. Идентификатор для сайтов (sub) остался прежним."),
        title=_("Смена логина"),
        current=_("Текущий логин: %(login)s", login=account.login),
    )


@bp.route("/accounts/<int:account_id>/phone", methods=["GET", "POST"])
@staff_required(*OPERATOR_ROLES)
def account_phone(account_id: int):
    account = _account(account_id)
    return _change_page(
        account,
        PhoneChangeForm(),
        "phone",
        functools.partial(account_admin.change_phone, sms_countries=settings().sms.allowed_country_codes),
        done=_("Телефон изменён."),
        title=_("Смена телефона"),
        current=_("Текущий телефон: %(phone)s", phone=account.phone),
    )


def _change_page(account: Account, form, field: str, change, *, done: str, title: str, current: str):
    """A login or phone change: the new value and a reason, or the form again with the error at its field."""
    focus = _first_error(form) if form.is_submitted() else field
    if form.validate_on_submit():
        try:
            change(db.session, ctx(), account, form[field].data, reason=form.reason.data)
        except AccountDataError as error:
            db.session.rollback()
            focus = _show_error(form, error)
        else:
            db.session.commit()
            flash(done)
            return redirect(url_for("admin.account", account_id=account.id))
    return render_template(
        "admin/account_change.html",
        form=form,
        focus=focus,
        title=title,
        current=current,
        name=account.full_name,
        account_url=url_for("admin.account", account_id=account.id),
    )


@bp.route("/accounts/<int:account_id>/block", methods=["POST"])
@staff_required(*OPERATOR_ROLES)
def account_block(account_id: int):
    return _set_blocked(_account(account_id), True)


@bp.route("/accounts/<int:account_id>/unblock", methods=["POST"])
@staff_required(*OPERATOR_ROLES)
def account_unblock(account_id: int):
    return _set_blocked(_account(account_id), False)


def _set_blocked(account: Account, blocked: bool):
    form = ConfirmForm(prefix="block")
    if not confirmed(form):
        return _card(account, block_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    try:
        if blocked:
            account_admin.block(db.session, ctx(), account, reason=form.reason.data, events=current().events)
        else:
            account_admin.unblock(db.session, ctx(), account, reason=form.reason.data)
    except AccountDataError:
        db.session.rollback()
        return _card(
            account, block_form=form, error=messages.ACCOUNT_ERRORS[("reason", "required")], status=400
        )
    db.session.commit()
    flash(_("Учётная запись заблокирована.") if blocked else _("Учётная запись разблокирована."))
    return redirect(url_for("admin.account", account_id=account.id))


@bp.route("/accounts/<int:account_id>/unlock", methods=["POST"])
@staff_required(*OPERATOR_ROLES)
def account_unlock(account_id: int):
    account = _account(account_id)
    form = ActionForm(prefix="unlock")
    if not form.validate_on_submit():
        abort(400)
    account_admin.lift_lock(db.session, ctx(), account, reason=form.reason.data)
    db.session.commit()
    flash(_("Блокировка после неверных паролей снята."))
    return redirect(url_for("admin.account", account_id=account.id))
