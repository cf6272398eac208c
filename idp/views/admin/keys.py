"""Admins: signing keys — list, rotate (the rules of ``idp keys rotate``), retire."""

from __future__ import annotations

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField

from ... import messages
from ...extensions import db
from ...models import SigningKey
from ...oauth.keys import cache
from ...services import audit
from ...services import keys as key_service
from .common import ADMIN_ROLES
from .common import ConfirmForm
from .common import bp
from .common import confirmed
from .common import ctx
from .common import current_time
from .common import settings
from .common import staff_required
from .common import when


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


@bp.route("/keys")
@staff_required(*ADMIN_ROLES)
def keys_list():
    return _page()


def _page(rotate_form=None, retire_form=None, error=None, status=200):
    now = current_time()
    rows = [
        {
            "kid": row.kid,
            "alg": row.alg,
            "created": when(row.created_at),
            "state": _state(row, now),
            "retirable": row.expires_at is None or row.expires_at > now,
            "retire_url": url_for("admin.key_retire", kid=row.kid),
        }
        for row in key_service.all_keys(db.session, newest_first=True)
    ]
    return render_template(
        "admin/keys.html",
        rows=rows,
        rotate_form=rotate_form or RotateForm(prefix="rotate"),
        retire_form=retire_form or ConfirmForm(prefix="retire"),
        publish_ahead=settings().keys.publish_ahead,
        retire_after=key_service.retire_after(settings()),
        error=error,
    ), status


@bp.route("/keys/rotate", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def key_rotate():
    form = RotateForm(prefix="rotate")
    if not confirmed(form):
        return _page(rotate_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    context = ctx()
    # The same rules as `idp keys rotate` (OIDC Core §10.1.1): published now, signing after publish_ahead,
    # the old keys verifying until every ID token they signed has expired and left relying parties' caches.
    new = key_service.rotate_keys(
        db.session, settings(), now=context.now, immediate=bool(form.immediate.data)
    )
    audit.record(
        db.session,
        context,
        "keys.rotated",
        reason=form.reason.data,
        details={"kids": [row.kid for row in new], "immediate": bool(form.immediate.data)},
    )
    db.session.commit()
    cache().forget()
    flash(_("Новые ключи опубликованы."))
    return redirect(url_for("admin.keys_list"))


@bp.route("/keys/<kid>/retire", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def key_retire(kid: str):
    form = ConfirmForm(prefix="retire")
    if not confirmed(form):
        return _page(retire_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    context = ctx()
    row = key_service.find_key(db.session, kid)
    if row is None:
        abort(404)
    if key_service.is_only_signer(db.session, row, now=context.now):
        error = _("Это единственный действующий ключ %(alg)s: сначала замените ключи.", alg=row.alg)
        return _page(retire_form=form, error=error, status=400)
    key_service.retire_key(db.session, kid, now=context.now)
    audit.record(db.session, context, "keys.retired", reason=form.reason.data, details={"kid": kid})
    db.session.commit()
    cache().forget()
    flash(_("Ключ %(kid)s выведен из JWKS.", kid=kid))
    return redirect(url_for("admin.keys_list"))
