"""Admins: signing keys — list, rotate (the rules of ``idp keys rotate``), retire."""

from __future__ import annotations

from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import BooleanField

from ...extensions import db
from ...models import SigningKey
from ...oauth import keys
from ...services import audit
from .. import web
from . import bp
from .common import ADMIN_ROLES
from .common import ConfirmForm
from .common import confirmed
from .common import ctx
from .common import staff_required
from .common import when

CONFIRM_ERROR = _l("Отметьте «Подтверждаю», чтобы продолжить.")


class RotateForm(ConfirmForm):
    immediate = BooleanField(_l("Компрометация: подписывать новыми ключами сразу и убрать старые из JWKS"))


def _state(row: SigningKey, now: int) -> str:
    if row.expires_at is not None and row.expires_at <= now:
        return _("выведен")
    if row.activates_at > now:
        return _("опубликован, подписывает с %(when)s", when=when(row.activates_at))
    if row.expires_at is not None:
        return _("заменён, проверяется до %(when)s", when=when(row.expires_at))
    return _("подписывает")


def _only_signer(row: SigningKey, now: int) -> bool:
    """Retiring the one key that signs for its algorithm would leave that algorithm without a key."""
    signers = [
        other
        for other in db.session.scalars(select(SigningKey).filter_by(alg=row.alg))
        if other.activates_at <= now and (other.expires_at is None or other.expires_at > now)
    ]
    return signers == [row]


@bp.route("/keys")
@staff_required(*ADMIN_ROLES)
def keys_list():
    return _page()


def _page(rotate_form=None, retire_form=None, error=None, status=200):
    now = web.now()
    rows = [
        {
            "kid": row.kid,
            "alg": row.alg,
            "created": when(row.created_at),
            "state": _state(row, now),
            "retirable": row.expires_at is None or row.expires_at > now,
            "retire_url": url_for("admin.key_retire", kid=row.kid),
        }
        for row in db.session.scalars(select(SigningKey).order_by(SigningKey.id.desc()))
    ]
    cfg = current_app.config
    return render_template(
        "admin/keys.html",
        rows=rows,
        rotate_form=rotate_form or RotateForm(prefix="rotate"),
        retire_form=retire_form or ConfirmForm(prefix="retire"),
        publish_ahead=cfg["KEYS_PUBLISH_AHEAD"],
        retire_after=cfg["OAUTH_ID_TOKEN_TTL"] + cfg["KEYS_JWKS_MAX_AGE"],
        error=error,
    ), status


@bp.route("/keys/rotate", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def key_rotate():
    form = RotateForm(prefix="rotate")
    if not confirmed(form):
        return _page(rotate_form=form, error=CONFIRM_ERROR, status=400)
    cfg = current_app.config
    context = ctx()
    # The same rules as `idp keys rotate` (OIDC Core §10.1.1): published now, signing after publish_ahead,
    # the old keys verifying until every ID token they signed has expired and left relying parties' caches.
    new = keys.rotate_keys(
        db.session,
        now=context.now,
        publish_ahead=cfg["KEYS_PUBLISH_AHEAD"],
        retire_after=cfg["OAUTH_ID_TOKEN_TTL"] + cfg["KEYS_JWKS_MAX_AGE"],
        immediate=bool(form.immediate.data),
    )
    db.session.flush()
    audit.record(
        db.session, context, "keys.rotated", reason=form.reason.data,
        details={"kids": [row.kid for row in new], "immediate": bool(form.immediate.data)},
    )
    db.session.commit()
    keys.forget_cached_keys()
    flash(_("Новые ключи опубликованы."))
    return redirect(url_for("admin.keys_list"))


@bp.route("/keys/<kid>/retire", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def key_retire(kid: str):
    form = ConfirmForm(prefix="retire")
    if not confirmed(form):
        return _page(retire_form=form, error=CONFIRM_ERROR, status=400)
    context = ctx()
    row = db.session.scalar(select(SigningKey).filter_by(kid=kid))
    if row is None:
        abort(404)
    if _only_signer(row, context.now):
        error = _("Это единственный действующий ключ %(alg)s: сначала замените ключи.", alg=row.alg)
        return _page(retire_form=form, error=error, status=400)
    keys.retire_key(db.session, kid, now=context.now)
    audit.record(db.session, context, "keys.retired", reason=form.reason.data, details={"kid": kid})
    db.session.commit()
    keys.forget_cached_keys()
    flash(_("Ключ %(kid)s выведен из JWKS.", kid=kid))
    return redirect(url_for("admin.keys_list"))
