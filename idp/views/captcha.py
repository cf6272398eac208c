"""The captcha a form can ask for (the reset and recovery forms do; the sign-in page can): one challenge,
shown as an image and spoken («Прослушать код»).

/captcha/new                      a new challenge for the page («Обновить»): {"token": "..."}
/captcha/image.png?c=<token>      its image
/captcha/audio.wav?c=<token>&lang=<page language>   its digits, spoken

The challenge travels with the page, in a hidden field of the form (``CaptchaForm``), and its image and
sound are drawn from the token alone, so any worker on any host answers without touching the database.
A form's view calls ``prepare(form)`` each time it renders the form and ``solved(form)`` when it is
sent; its template renders ``captcha_widget(form, page_url)`` from ``captcha/widget.html``.
"""

from __future__ import annotations

import logging
import shutil

from flask import Blueprint
from flask import Response
from flask import abort
from flask import jsonify
from flask import request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms import StringField
from wtforms.validators import Length

from .. import messages
from ..extensions import db
from ..extensions import limiter
from ..runtime import current
from ..runtime import of
from ..services import captcha
from ..services import captcha_audio
from ..services.captcha import LENGTH
from ..services.captcha import MAX_ANSWER
from .widgets import LeanMeta

log = logging.getLogger(__name__)

bp = Blueprint("captcha", __name__, url_prefix="/captcha")


class CaptchaForm(FlaskForm):
    """Base of a form that asks for the captcha: the typed digits and the challenge they answer. The
    sign-in forms derive from it; their inputs are drawn by the lean widgets (``views.widgets``)."""

    class Meta(LeanMeta):
        pass

    captcha_length = LENGTH
    captcha = StringField(_l("Код на изображении"), validators=[Length(max=MAX_ANSWER)])
    captcha_token = HiddenField()


def enabled() -> bool:
    return current().settings.captcha.enabled


def _keys() -> captcha.Keys:
    return captcha.make_keys(current().settings.server.secret_key)


def _issue() -> str:
    runtime = current()
    return captcha.issue(_keys(), now=runtime.clock(), ttl=runtime.settings.captcha.ttl)


def prepare(form: CaptchaForm) -> None:
    """Issue a challenge for the page about to show ``form``, and clear the digits typed before. With
    [captcha] enabled = false the form carries none and the widget shows nothing."""
    form.captcha.data = ""
    form.captcha_token.data = _issue() if enabled() else ""


def solved(form: CaptchaForm) -> bool:
    """Use up the form's challenge and say whether the typed digits solved it (always true when
    [captcha] enabled = false, which exists for automated tests only). The use is committed at once, so
    a replay of the same form fails on every host."""
    if not enabled():
        return True
    ok = captcha.redeem(
        db.session, _keys(), form.captcha_token.data, form.captcha.data, now=current().clock()
    )
    db.session.commit()
    return ok


@bp.record_once
def _warn_without_speech(state) -> None:
    if of(state.app).settings.captcha.enabled and shutil.which(captcha_audio.PROGRAM) is None:
        log.warning(
            "%s is not installed: «Прослушать код» answers 503 (install the Debian package espeak-ng)",
            captcha_audio.PROGRAM,
        )


def _image_rate_limit() -> str:
    return current().settings.captcha.image_rate_limit


def _audio_rate_limit() -> str:
    return current().settings.captcha.audio_rate_limit


@bp.before_request
def _only_when_enabled():
    if not enabled():
        abort(404)


@bp.errorhandler(404)
def _gone(error):
    # An image or a sound element shows no page; a short text is all a person (or a tool) would read.
    return _plain(str(messages.CAPTCHA_GONE), 404)


@bp.errorhandler(429)
def _too_many(error):
    # Refused in Flask-Limiter's before_request hook: nothing has been drawn or spoken.
    return _plain(str(messages.HTTP_ERRORS[429]), 429)


@bp.route("/new")
@limiter.limit(_image_rate_limit)
def new():
    """«Обновить»: a new challenge for the page, whose script puts it in the form, the image and the sound."""
    return _uncached(jsonify(token=_issue()))


@bp.route("/image.png")
@limiter.limit(_image_rate_limit)
def image():
    keys, challenge = _challenge()
    png = captcha.render_png(captcha.answer_of(keys, challenge), captcha.noise_seed(keys, challenge))
    return _uncached(Response(png, mimetype="image/png"))


@bp.route("/audio.wav")
@limiter.limit(_audio_rate_limit)
def audio():
    keys, challenge = _challenge()
    language = request.args.get("lang", "")
    if language not in captcha_audio.VOICES:
        language = str(get_locale())
    try:
        wav = captcha_audio.render_wav(
            captcha.answer_of(keys, challenge), language=language, seed=captcha.noise_seed(keys, challenge)
        )
    except captcha_audio.SpeechError as error:
        log.error("spoken captcha unavailable: %s", error)
        return _plain(str(messages.CAPTCHA_SPEECH_DOWN), 503)
    return _uncached(Response(wav, mimetype="audio/wav"))


def _challenge() -> tuple[captcha.Keys, captcha.Challenge]:
    keys = _keys()
    challenge = captcha.read(keys, request.args.get("c"), now=current().clock())
    if challenge is None:
        abort(404)
    return keys, challenge


def _uncached(response: Response) -> Response:
    # A challenge is single-use and short-lived: no cache (the browser's included) keeps a copy.
    response.cache_control.no_store = True
    return response


def _plain(text: str, status: int) -> Response:
    return _uncached(Response(text, status=status, mimetype="text/plain"))
