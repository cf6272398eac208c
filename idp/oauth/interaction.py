"""What an authorization request needs before a code is issued (OIDC Core §3.1.2.1-§3.1.2.6).

The authorization view validates the request with authlib, then asks ``next_step``: sign in, change
a temporary password, consent, or issue the code. ``prompt=none`` turns each of those needs into the
matching error. A request waiting for the user is kept as its parameters (``pending.PendingRequest``)
and re-validated in full when the user comes back, so nothing is trusted from the interruption.
"""

from __future__ import annotations

import enum

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Payload
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oidc.core.errors import ConsentRequiredError
from authlib.oidc.core.errors import InteractionRequiredError
from authlib.oidc.core.errors import LoginRequiredError
from joserfc import jwt
from joserfc.errors import JoseError
from werkzeug.datastructures import MultiDict

from ..models import Consent
from ..models import SsoSession
from ..runtime import settings
from . import keys
from .claims import ClaimsRequestError
from .claims import consent_scope
from .claims import parse_claims_request
from .claims import subject_accepted
from .subjects import subject

SUPPORTED_PROMPTS = {"none", "login", "consent", "select_account"}


class Step(enum.Enum):
    LOGIN = "login"
    CHANGE_PASSWORD = "change_password"
    CONSENT = "consent"
    ISSUE = "issue"


class _ParamsPayload(OAuth2Payload):
    def __init__(self, params: MultiDict):
        self._params = params

    @property
    def data(self):
        return self._params

    @property
    def datalist(self):
        return {key: self._params.getlist(key) for key in self._params}


class ParamsRequest(OAuth2Request):
    """An authorization request rebuilt from its parameters, whether they came in the query, a POSTed
    form, or a pending request restored after sign-in."""

    def __init__(self, method: str, uri: str, headers, params: MultiDict):
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _ParamsPayload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return self.payload.data


def next_step(grant, *, sso: SsoSession | None, consent: Consent | None, started_at: int, now: int) -> Step:
    prompts = _prompts(grant)
    redirect_uri = grant.redirect_uri
    state = grant.request.payload.state
    if _needs_login(grant, sso, prompts, started_at, now):
        if "none" in prompts:
            raise LoginRequiredError(redirect_uri=redirect_uri, state=state)
        return Step.LOGIN
    if sso.account.must_change_password:
        if "none" in prompts:
            raise InteractionRequiredError(redirect_uri=redirect_uri, state=state)
        return Step.CHANGE_PASSWORD
    if _needs_consent(grant, consent, prompts, started_at):
        if "none" in prompts:
            raise ConsentRequiredError(redirect_uri=redirect_uri, state=state)
        return Step.CONSENT
    return Step.ISSUE


def _prompts(grant) -> set[str]:
    raw = grant.request.payload.data.get("prompt") or ""
    prompts = set(raw.split())
    if not prompts <= SUPPORTED_PROMPTS or ("none" in prompts and len(prompts) > 1):
        raise InvalidRequestError(
            "Invalid 'prompt' parameter.", redirect_uri=grant.redirect_uri, state=grant.request.payload.state
        )
    return prompts


def _max_age(grant) -> int | None:
    raw = grant.request.payload.data.get("max_age")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidRequestError(
            "Invalid 'max_age' parameter.", redirect_uri=grant.redirect_uri, state=grant.request.payload.state
        )
    return int(raw)


def hinted_subject(grant) -> str | None:
    """The ``sub`` of a valid ``id_token_hint`` of ours; an expired one still names its user (§3.1.2.1)."""
    hint = grant.request.payload.data.get("id_token_hint")
    if not hint:
        return None
    try:
        token = jwt.decode(hint, keys.cache().verification_keyset(), algorithms=list(keys.ALGORITHMS))
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidRequestError(
            "Invalid 'id_token_hint'.", redirect_uri=grant.redirect_uri, state=grant.request.payload.state
        ) from exc
    if token.claims.get("iss") != settings().server.issuer or not token.claims.get("sub"):
        raise InvalidRequestError(
            "Invalid 'id_token_hint'.", redirect_uri=grant.redirect_uri, state=grant.request.payload.state
        )
    return token.claims["sub"]


def _needs_login(grant, sso: SsoSession | None, prompts: set[str], started_at: int, now: int) -> bool:
    max_age = _max_age(grant)
    hinted = hinted_subject(grant)
    if sso is None:
        return True
    fresh = sso.auth_time >= started_at
    sub = subject(sso.account, grant.client)
    if (hinted is not None and hinted != sub) or not _subject_requested(grant, sub):
        if fresh:
            # The user signed in, but as someone else than the RP asked for.
            raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
        return True
    if fresh:
        return False
    # select_account (OIDC Core §3.1.2.1): a browser holds one account's session, so choosing an account
    # is signing in again, with this account or another one.
    if "login" in prompts or "select_account" in prompts:
        return True
    return max_age is not None and now - sso.auth_time > max_age


def _subject_requested(grant, sub: str) -> bool:
    """Whether ``sub`` is the user a ``claims`` request's ``sub`` value names, if it names one (OIDC Core
    §3.1.2.2): like an id_token_hint, it is answered only for that user."""
    try:
        parsed = parse_claims_request(grant.request.payload.data.get("claims"))
    except ClaimsRequestError:
        # Refused as invalid_request when the grant was validated; nothing to compare here.
        return True
    return subject_accepted(parsed, sub)


def _needs_consent(grant, consent: Consent | None, prompts: set[str], started_at: int) -> bool:
    if grant.request.client.trusted:
        return False
    if "consent" in prompts:
        return consent is None or consent.granted_at < started_at
    if consent is None:
        return True
    return not set(consent_scope(grant).split()) <= set(consent.scope.split())
