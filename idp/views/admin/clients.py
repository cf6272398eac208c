"""Admins: relying parties (OAuth clients) — register, edit, new secret, disable, enable, delete."""

from __future__ import annotations

import json

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import IntegerField
from wtforms import RadioField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms import widgets
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from ... import messages
from ...errors import ClientDataError
from ...extensions import db
from ...models import OAuth2Client
from ...runtime import current
from ...services import client_secrets
from ...services import clients as clients_service
from ...services.clients import ClientInput
from ...services.keys import ALGORITHMS
from ...urls import public_url
from .common import ADMIN_ROLES
from .common import ConfirmForm
from .common import bp
from .common import confirmed
from .common import ctx
from .common import settings
from .common import staff_required
from .common import when

# The form's field for each field the service names.
FORM_FIELD = {"scope": "scopes", "public": "client_type", "auth_method": "client_type"}


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ClientForm(FlaskForm):
    name = StringField(_l("Название"), validators=[InputRequired(), Length(max=100)])
    client_type = RadioField(
        _l("Тип клиента"),
        choices=[
            SelectChoice("confidential", _l("Конфиденциальный (серверное приложение с секретом)")),
            SelectChoice(
                "public", _l("Публичный (SPA или мобильное приложение, без секрета, только с PKCE)")
            ),
        ],
        default="confidential",
    )
    redirect_uris = TextAreaField(
        _l("Адреса возврата (redirect_uri), по одному в строке"), validators=[Length(max=8000)]
    )
    post_logout_redirect_uris = TextAreaField(
        _l("Адреса после выхода (post_logout_redirect_uri), по одному в строке"),
        validators=[Length(max=8000)],
    )
    backchannel_logout_uri = StringField(
        _l("Адрес back-channel logout (если есть)"), validators=[Length(max=2000)]
    )
    frontchannel_logout_uri = StringField(
        _l("Адрес front-channel logout (если есть)"), validators=[Length(max=2000)]
    )
    client_uri = StringField(
        _l("Главная страница сайта (client_uri), на неё ведёт ссылка после входа"),
        validators=[Length(max=2000)],
    )
    grant_types = MultiCheckboxField(
        _l("Типы разрешений"),
        choices=[SelectChoice(g) for g in clients_service.GRANT_TYPES],
        default=["authorization_code", "refresh_token"],
    )
    scopes = MultiCheckboxField(
        _l("Области доступа"),
        choices=[SelectChoice(s) for s in clients_service.SCOPES],
        default=["openid", "profile"],
    )
    trusted = BooleanField(_l("Доверенный (без экрана согласия)"))
    id_token_alg = SelectField(
        _l("Подпись ID-токена"), choices=[SelectChoice(a) for a in ALGORITHMS], default="RS256"
    )
    access_token_ttl = IntegerField(_l("Срок жизни access token, секунд"), validators=[Optional()])
    id_token_ttl = IntegerField(_l("Срок жизни ID-токена, секунд"), validators=[Optional()])
    refresh_token_ttl = IntegerField(_l("Срок жизни refresh token, секунд"), validators=[Optional()])
    subject_type = SelectField(
        _l("Идентификатор пользователя (sub)"),
        choices=[
            SelectChoice("public", _l("Общий для всех клиентов (public)")),
            SelectChoice("pairwise", _l("Свой для каждого сектора (pairwise)")),
        ],
        default="public",
    )
    sector_identifier_uri = StringField(
        _l("sector_identifier_uri (если адреса возврата на разных хостах)"), validators=[Length(max=2000)]
    )
    # README "High-assurance relying parties": RFC 7523, RFC 9068 / RFC 8707, RFC 9126, RFC 9449.
    auth_method = SelectField(
        _l("Аутентификация конфиденциального клиента"),
        choices=[SelectChoice(m) for m in clients_service.CONFIDENTIAL_AUTH_METHODS],
        default="client_secret_basic",
    )
    jwks = TextAreaField(
        _l("Открытые ключи клиента, JWK Set в JSON (для private_key_jwt)"), validators=[Length(max=20000)]
    )
    jwks_uri = StringField(
        _l("Адрес JWK Set клиента, jwks_uri (для private_key_jwt)"), validators=[Length(max=2000)]
    )
    access_token_format = SelectField(
        _l("Формат access token"),
        choices=[
            SelectChoice("opaque", _l("Случайная строка (opaque)")),
            SelectChoice("jwt", _l("JWT (RFC 9068)")),
        ],
        default="opaque",
    )
    resources = TextAreaField(
        _l("Ресурсы (resource indicators, RFC 8707), по одному в строке"), validators=[Length(max=8000)]
    )
    require_par = BooleanField(_l("Запросы авторизации только через PAR (RFC 9126)"))
    dpop_bound = BooleanField(_l("Токены только с привязкой к ключу DPoP (RFC 9449)"))

    def client_input(self, public: bool) -> ClientInput:
        data = ClientInput(
            name=self.name.data or "",
            redirect_uris=_lines(self.redirect_uris.data),
            post_logout_redirect_uris=_lines(self.post_logout_redirect_uris.data),
            backchannel_logout_uri=(self.backchannel_logout_uri.data or "").strip() or None,
            frontchannel_logout_uri=(self.frontchannel_logout_uri.data or "").strip() or None,
            client_uri=(self.client_uri.data or "").strip() or None,
            grant_types=list(self.grant_types.data or []),
            scope=" ".join(self.scopes.data or []),
            public=public,
            trusted=bool(self.trusted.data),
            id_token_alg=self.id_token_alg.data,
            lifetimes={key: getattr(self, key).data for key in clients_service.LIFETIMES},
            subject_type=self.subject_type.data or "public",
            sector_identifier_uri=(self.sector_identifier_uri.data or "").strip() or None,
        )
        if not public:
            data.auth_method = self.auth_method.data or "client_secret_basic"
        data.jwks = _json_object(self.jwks.data)
        data.jwks_uri = (self.jwks_uri.data or "").strip() or None
        data.access_token_format = self.access_token_format.data or "opaque"
        data.resources = _lines(self.resources.data)
        data.require_par = bool(self.require_par.data)
        data.dpop_bound = bool(self.dpop_bound.data)
        return data


def _json_object(text: str | None):
    """The JWK Set typed into the form: None when empty; what is not a JSON object goes to the check
    (services.clients.check_jwks), which refuses it on the field."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"keys": "not JSON"}


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _fill(form: ClientForm, client: OAuth2Client) -> None:
    metadata = client.client_metadata
    form.name.data = client.client_name
    form.client_type.data = "public" if client.is_public else "confidential"
    form.redirect_uris.data = "\n".join(client.redirect_uris)
    form.post_logout_redirect_uris.data = "\n".join(client.post_logout_redirect_uris)
    form.backchannel_logout_uri.data = metadata.get("backchannel_logout_uri", "")
    form.frontchannel_logout_uri.data = metadata.get("frontchannel_logout_uri", "")
    form.client_uri.data = metadata.get("client_uri", "")
    form.grant_types.data = list(client.grant_types)
    form.scopes.data = client.scope.split()
    form.trusted.data = client.trusted
    form.id_token_alg.data = client.id_token_signed_response_alg
    form.subject_type.data = client.subject_type
    form.sector_identifier_uri.data = client.sector_identifier_uri or ""
    if not client.is_public:
        form.auth_method.data = client.token_endpoint_auth_method
    form.jwks.data = json.dumps(client.jwks, ensure_ascii=False, indent=1) if client.jwks is not None else ""
    form.jwks_uri.data = client.jwks_uri or ""
    form.access_token_format.data = client.access_token_format
    form.resources.data = "\n".join(client.allowed_resources)
    form.require_par.data = client.require_pushed_authorization_requests
    form.dpop_bound.data = client.dpop_bound_access_tokens
    for key in clients_service.LIFETIMES:
        getattr(form, key).data = metadata.get(key)


def _show_error(form: ClientForm, error: ClientDataError) -> str:
    limit = getattr(settings().oauth, error.field, 0)
    message = messages.client_error(error, max_uris=clients_service.MAX_URIS, max_lifetime=limit)
    field = getattr(form, FORM_FIELD.get(error.field, error.field))
    field.errors = [message]
    return field.name


def _client(client_id: str) -> OAuth2Client:
    client = clients_service.find_client(db.session, client_id)
    if client is None:
        abort(404)
    return client


@bp.route("/clients")
@staff_required(*ADMIN_ROLES)
def clients():
    found = clients_service.all_clients(db.session)
    rows = [
        {
            "url": url_for("admin.client", client_id=client.client_id),
            "name": client.client_name,
            "client_id": client.client_id,
            "type": _("публичный") if client.is_public else _("конфиденциальный"),
            "trusted": _("да") if client.trusted else _("нет"),
            "state": _("включён") if client.enabled else _("отключён"),
            "registered": when(client.client_id_issued_at),
        }
        for client in found
    ]
    return render_template("admin/clients.html", rows=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
@staff_required(*ADMIN_ROLES)
def client_new():
    form = ClientForm()
    focus = "name"
    if form.validate_on_submit():
        try:
            client, secret = clients_service.create(
                db.session,
                ctx(),
                form.client_input(form.client_type.data == "public"),
                limits=settings().oauth,
                outbound_policy=current().outbound.policy,
                fetch=clients_service.sector_fetch(current().outbound),
            )
        except ClientDataError as error:
            db.session.rollback()
            focus = _show_error(form, error)
        else:
            db.session.commit()
            return _secret_page(client, secret, _("Клиент зарегистрирован"))
    elif form.is_submitted():
        focus = next((field.name for field in form if field.errors), "name")
    return render_template(
        "admin/client_form.html", form=form, focus=focus, title=_("Новый клиент"), client=None
    )


def _secret_page(client: OAuth2Client, secret: str | None, heading: str):
    return render_template(
        "admin/client_secret.html",
        heading=heading,
        client_id=client.client_id,
        secret=secret,
        discovery=public_url("oauth.discovery"),
        client_url=url_for("admin.client", client_id=client.client_id),
    )


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
@staff_required(*ADMIN_ROLES)
def client(client_id: str):
    client = _client(client_id)
    form = ClientForm()
    focus = "name"
    if form.validate_on_submit():
        try:
            clients_service.update_client(
                db.session,
                ctx(),
                client,
                form.client_input(client.is_public),
                limits=settings().oauth,
                outbound_policy=current().outbound.policy,
                fetch=clients_service.sector_fetch(current().outbound),
            )
        except ClientDataError as error:
            db.session.rollback()
            focus = _show_error(form, error)
        else:
            db.session.commit()
            flash(_("Изменения сохранены."))
            return redirect(url_for("admin.client", client_id=client.client_id))
    elif form.is_submitted():
        focus = next((field.name for field in form if field.errors), "name")
    else:
        _fill(form, client)
    return _edit_page(client, form, focus)


def _edit_page(client: OAuth2Client, form: ClientForm, focus: str, *, error=None, status: int = 200, **forms):
    return render_template(
        "admin/client_form.html",
        form=form,
        focus=focus,
        title=client.client_name,
        error=error,
        client={
            "client_id": client.client_id,
            "public": client.is_public,
            "enabled": client.enabled,
            "registered": when(client.client_id_issued_at),
            "secret_url": url_for("admin.client_secret", client_id=client.client_id),
            "state_url": url_for(
                "admin.client_enable" if not client.enabled else "admin.client_disable",
                client_id=client.client_id,
            ),
            "delete_url": url_for("admin.client_delete", client_id=client.client_id),
        },
        secret_form=forms.get("secret_form") or ConfirmForm(prefix="secret"),
        state_form=forms.get("state_form") or ConfirmForm(prefix="state"),
        delete_form=forms.get("delete_form") or ConfirmForm(prefix="delete"),
    ), status


def _refused(client: OAuth2Client, **forms):
    form = ClientForm(formdata=None)
    _fill(form, client)
    return _edit_page(client, form, "", error=messages.CONFIRM_REQUIRED, status=400, **forms)


@bp.route("/clients/<client_id>/secret", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def client_secret(client_id: str):
    client = _client(client_id)
    form = ConfirmForm(prefix="secret")
    if not confirmed(form) or client.is_public:
        return _refused(client, secret_form=form)
    secret = clients_service.rotate_secret(
        db.session, ctx(), client, sealing_key=client_secrets.sealing_key(settings().server.secret_key)
    )
    db.session.commit()
    return _secret_page(client, secret, _("Новый секрет клиента"))


@bp.route("/clients/<client_id>/disable", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def client_disable(client_id: str):
    return _set_enabled(_client(client_id), False)


@bp.route("/clients/<client_id>/enable", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def client_enable(client_id: str):
    return _set_enabled(_client(client_id), True)


def _set_enabled(client: OAuth2Client, enabled: bool):
    form = ConfirmForm(prefix="state")
    if not confirmed(form):
        return _refused(client, state_form=form)
    clients_service.set_enabled(db.session, ctx(), client, enabled, reason=form.reason.data)
    db.session.commit()
    flash(_("Клиент включён.") if enabled else _("Клиент отключён, его токены отозваны."))
    return redirect(url_for("admin.client", client_id=client.client_id))


@bp.route("/clients/<client_id>/delete", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def client_delete(client_id: str):
    client = _client(client_id)
    form = ConfirmForm(prefix="delete")
    if not confirmed(form):
        return _refused(client, delete_form=form)
    name = client.client_name
    clients_service.delete_client(db.session, ctx(), client, reason=form.reason.data)
    db.session.commit()
    flash(_("Клиент «%(name)s» удалён.", name=name))
    return redirect(url_for("admin.clients"))
