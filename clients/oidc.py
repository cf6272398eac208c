"""OpenID Connect for the demo relying parties (clients/cabinet, clients/portal).

What a relying party of the provider has to do, in one place: sign-in with the authorization code flow,
PKCE (S256) and a nonce; tokens kept on the server and refreshed before they expire; RP-initiated
logout; and the receiving end of back-channel logout, with the server-side session store it needs.

Copy this module with the app you start from. It needs Flask, authlib (its Flask OAuth client) and
joserfc, and knows nothing of the provider but its discovery document and the app's registration: the
JSON printed by ``idp clients create --json``. The routes are fixed; register them with the provider:

    /callback             --redirect-uri
    /logged-out           --post-logout-redirect-uri
    /backchannel-logout   --backchannel-logout-uri

An app calls ``init_app(app, scope=...)`` and defines the view ``index`` (its home page).
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

import requests
from authlib.integrations.flask_client import OAuth
from authlib.integrations.flask_client import OAuthError
from authlib.oauth2.rfc6749 import OAuth2Token
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import jsonify
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# The access token is refreshed when it has less than this left, so no call goes out with a dying token.
REFRESH_LEEWAY = 60
# Clock skew tolerated when checking iat and exp.
CLOCK_LEEWAY = 60
# How long the provider's sid of an ended session is remembered (its sessions last 12 hours at most).
ENDED_SID_MEMORY = 86400
HTTP_TIMEOUT = 10

bp = Blueprint("oidc", __name__)


class RegistrationError(Exception):
    """The registration JSON is missing, unreadable or lacks what the app needs."""


class SignInAgainError(Exception):
    """The provider no longer honours this session's tokens (logout, password change): sign in again."""


class LogoutTokenError(Exception):
    """A logout token failed a check of Back-Channel Logout §2.6; the message says which."""


def load_registration(source: str | dict | None) -> dict:
    """The output of ``idp clients create --json``: a file path, or the parsed object (tests)."""
    if isinstance(source, dict):
        registration = source
    elif source:
        try:
            with open(source, encoding="utf-8") as fh:
                registration = json.load(fh)
        except (OSError, ValueError) as exc:
            raise RegistrationError(f"cannot read the registration {source}: {exc}") from exc
    else:
        raise RegistrationError("no registration: give the JSON file of `idp clients create --json`")
    missing = [key for key in ("issuer", "client_id", "redirect_uris", "scope") if not registration.get(key)]
    if missing:
        raise RegistrationError(f"the registration lacks {', '.join(missing)}")
    return registration


def _registered(registration: dict, key: str, path: str) -> str:
    """The URI registered under ``key`` whose path is ``path``: the provider only accepts exact matches."""
    for uri in registration.get(key) or []:
        if urlsplit(uri).path == path:
            return uri
    raise RegistrationError(f"the registration has no {key} ending in {path}")


@dataclass
class LocalSession:
    """One signed-in browser. Its cookie holds only ``id``; tokens never leave the server."""

    id: str
    sid: str | None  # the provider's session id (the ID token's sid), which back-channel logout names
    sub: str
    token: dict
    csrf: str
    profile: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class SessionStore:
    """Server-side sessions, in memory. A signed cookie cannot be taken back from the browser, yet a
    back-channel logout must end the session it names (Back-Channel Logout §2.7): so sessions live
    here, found by the provider's sid or sub. It serves one process; with several, keep the same
    records in a shared store (Redis, a table)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sessions: dict[str, LocalSession] = {}
        # sid -> when the provider ended it. A session created after its logout arrived (a sign-in
        # that raced the logout) is dead on arrival.
        self._ended_sids: dict[str, float] = {}
        self._seen_jtis: dict[str, float] = {}

    def create(self, *, sid: str | None, sub: str, token: dict) -> LocalSession:
        local = LocalSession(secrets.token_urlsafe(32), sid, sub, token, csrf=secrets.token_urlsafe(16))
        with self._lock:
            self._sessions[local.id] = local
        return local

    def is_ended(self, sid: str) -> bool:
        """Whether a back-channel logout named this provider session."""
        with self._lock:
            return sid in self._ended_sids

    def get(self, session_id) -> LocalSession | None:
        with self._lock:
            local = self._sessions.get(session_id) if isinstance(session_id, str) else None
            if local is not None and local.sid in self._ended_sids:
                del self._sessions[local.id]
                return None
            return local

    def drop(self, session_id) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def end(self, *, sid: str | None, sub: str | None) -> int:
        """Back-Channel Logout §2.7: end the sessions with that sid, or, without one, all of that sub."""
        now = time.time()
        with self._lock:
            if sid:
                self._ended_sids[sid] = now
            gone = [s.id for s in self._sessions.values() if (s.sid == sid if sid else s.sub == sub)]
            for session_id in gone:
                del self._sessions[session_id]
            self._ended_sids = {k: t for k, t in self._ended_sids.items() if t > now - ENDED_SID_MEMORY}
            return len(gone)

    def first_use(self, jti: str, expires_at: float) -> bool:
        """Back-Channel Logout §2.6 step 8: a jti is accepted once while its token lives."""
        now = time.time()
        with self._lock:
            self._seen_jtis = {k: exp for k, exp in self._seen_jtis.items() if exp > now - CLOCK_LEEWAY}
            if jti in self._seen_jtis:
                return False
            self._seen_jtis[jti] = expires_at
            return True


class RelyingParty:
    """The app's client of the provider: authlib's Flask OAuth client, set up from the registration."""

    def __init__(self, app, registration: dict, scope: str):
        self.registration = registration
        self.client_id = registration["client_id"]
        self.redirect_uri = _registered(registration, "redirect_uris", "/callback")
        self.post_logout_redirect_uri = _registered(registration, "post_logout_redirect_uris", "/logged-out")
        # The ID token algorithm this client registered (OIDC Core §3.1.3.7 step 6-7); logout tokens too.
        self.algorithms = [registration.get("id_token_signed_response_alg") or "RS256"]
        self.store = SessionStore()
        self.client = OAuth(app).register(
            "idp",
            client_id=self.client_id,
            client_secret=registration.get("client_secret"),
            # OIDC Discovery 1.0 §4: endpoints, JWKS and the issuer come from the provider itself.
            server_metadata_url=registration["issuer"] + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": scope,
                "code_challenge_method": "S256",  # PKCE, RFC 7636 §4.2
                "token_endpoint_auth_method": registration.get("token_endpoint_auth_method"),
                "default_timeout": HTTP_TIMEOUT,
                # Refreshing is done by fresh_token() below, which stores the rotated refresh token;
                # authlib's own refresh-on-expiry would not, so it must never trigger.
                "leeway": 0,
            },
        )

    @property
    def issuer(self) -> str:
        return self.client.load_server_metadata()["issuer"]

    def current(self) -> LocalSession | None:
        return self.store.get(session.get("local"))

    def forget(self) -> None:
        """Sign this browser out here (not at the provider)."""
        self.store.drop(session.pop("local", None))

    def fresh_token(self, local: LocalSession) -> dict:
        """The session's tokens, refreshed first when the access token is about to expire.

        The provider rotates refresh tokens and takes a rotated-out one coming back for theft, revoking
        the whole family (RFC 9700 §4.14.2). So refreshes of one session are serialised, and the new
        refresh token replaces the old one before anything else can use it."""
        with local.lock:
            token = OAuth2Token.from_dict(local.token)
            if not token.is_expired(leeway=REFRESH_LEEWAY):
                return local.token
            if not token.get("refresh_token"):
                raise SignInAgainError("no refresh token (offline_access was not granted)")
            try:
                new = self.client.fetch_access_token(
                    grant_type="refresh_token", refresh_token=token["refresh_token"], scope=token.get("scope")
                )
            except OAuthError as error:
                # RFC 6749 §5.2: invalid_grant — revoked by a logout or a password change, or expired.
                if error.error == "invalid_grant":
                    raise SignInAgainError(error.error) from error
                raise
            if "id_token" in new:
                # OIDC Core §12.2: a refreshed ID token is checked like the first and names the same user.
                claims = self.client.parse_id_token(new, nonce=None)
                if claims["sub"] != local.sub:
                    raise SignInAgainError("the refreshed ID token names another user")
            else:
                new["id_token"] = local.token["id_token"]
            local.token = dict(new)
            return local.token

    def userinfo(self, local: LocalSession) -> dict:
        """UserInfo (OIDC Core §5.3) with a fresh access token."""
        token = self.fresh_token(local)
        try:
            claims = dict(self.client.userinfo(token=token))
        except requests.HTTPError as error:
            # RFC 6750 §3.1: 401 invalid_token — the provider revoked the access token (a logout).
            if error.response is not None and error.response.status_code == 401:
                raise SignInAgainError("the access token was revoked") from error
            raise
        # OIDC Core §5.3.4: the UserInfo sub must be the ID token's, or the response is not used.
        if claims.get("sub") != local.sub:
            raise SignInAgainError("UserInfo names another user")
        return claims

    def verify_logout_token(self, raw: str) -> dict:
        """Back-Channel Logout §2.6, in its order; returns the claims or raises LogoutTokenError."""
        metadata = self.client.load_server_metadata()
        # Steps 2-3: the signature, by a key of the provider's JWKS, with the algorithm we registered.
        try:
            try:
                token = jwt.decode(raw, self._jwks(), algorithms=self.algorithms)
            except InvalidKeyIdError:
                # A key the provider has rotated in since the JWKS was fetched: fetch it again, once.
                token = jwt.decode(raw, self._jwks(force=True), algorithms=self.algorithms)
        except (JoseError, ValueError, TypeError) as exc:
            raise LogoutTokenError("the signature does not verify") from exc
        # §2.4 (RFC 8725 §3.11): logout tokens are explicitly typed, so an ID token never passes for one.
        if token.header.get("typ") != "logout+jwt":
            raise LogoutTokenError("typ is not logout+jwt")
        claims = token.claims
        # Step 4: iss, aud, iat and exp as for an ID token.
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY,
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": self.client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise LogoutTokenError(f"claim check failed: {exc}") from exc
        # Step 5: whom to sign out.
        if not isinstance(claims.get("sid"), str) and not isinstance(claims.get("sub"), str):
            raise LogoutTokenError("neither sid nor sub")
        # Step 6: the back-channel logout event.
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
            raise LogoutTokenError("no back-channel logout event")
        # Step 7: a nonce would make it an ID token.
        if "nonce" in claims:
            raise LogoutTokenError("a logout token must not contain a nonce")
        # Step 8: each token works once.
        if not self.store.first_use(claims["jti"], claims["exp"]):
            raise LogoutTokenError("this jti was already used")
        return claims

    def _jwks(self, force: bool = False) -> KeySet:
        return KeySet.import_key_set(self.client.fetch_jwk_set(force=force))


def init_app(app, *, scope: str) -> RelyingParty:
    """Register the routes and the relying party, from the registration in ``app.config["REGISTRATION"]``."""
    rp = RelyingParty(app, load_registration(app.config.get("REGISTRATION")), scope)
    app.config.setdefault("SESSION_COOKIE_SECURE", rp.redirect_uri.startswith("https://"))
    app.extensions["oidc_rp"] = rp
    app.register_blueprint(bp)
    return rp


def relying_party() -> RelyingParty:
    return current_app.extensions["oidc_rp"]


@bp.get("/login")
def login():
    # authlib makes the state, the nonce (OIDC Core §3.1.2.1) and the PKCE verifier, and keeps them in
    # the session cookie until the callback.
    rp = relying_party()
    return rp.client.authorize_redirect(rp.redirect_uri)


@bp.get("/callback")
def callback():
    rp = relying_party()
    # RFC 9207 §2.4: the provider says it sends iss, so a response without ours is refused (mix-up attacks).
    if request.args.get("iss") != rp.issuer:
        abort(400)
    try:
        # Checks state; redeems the code with the PKCE verifier; verifies the ID token's signature,
        # iss, aud, exp, iat, nonce and at_hash (OIDC Core §3.1.3.7).
        token = rp.client.authorize_access_token()
    except OAuthError as error:
        flash(f"Войти не удалось ({error.error}).")
        return redirect(url_for("index"))
    claims = token.pop("userinfo")
    rp.forget()
    local = rp.store.create(sid=claims.get("sid"), sub=claims["sub"], token=dict(token))
    try:
        local.profile = rp.userinfo(local)
    except SignInAgainError:
        rp.store.drop(local.id)
        flash("Войти не удалось.")
        return redirect(url_for("index"))
    session["local"] = local.id
    return redirect(url_for("index"))


@bp.post("/logout")
def logout():
    rp = relying_party()
    local = rp.current()
    if local is None:
        return redirect(url_for("index"))
    if not hmac.compare_digest(request.form.get("csrf", ""), local.csrf):
        abort(400)
    rp.forget()
    # RP-Initiated Logout 1.0 §2: the provider ends its session and sends the browser back here with
    # the state (checked in logged_out); the ID token tells it who and for which client.
    return rp.client.logout_redirect(
        post_logout_redirect_uri=rp.post_logout_redirect_uri, id_token_hint=local.token["id_token"]
    )


@bp.get("/logged-out")
def logged_out():
    try:
        relying_party().client.validate_logout_response()
    except OAuthError:
        # RP-Initiated Logout §3: a state we did not send means the redirect is not ours to trust.
        return redirect(url_for("index"))
    flash("Вы вышли.")
    return redirect(url_for("index"))


@bp.post("/backchannel-logout")
def backchannel_logout():
    """Back-Channel Logout §2.5-§2.8: the provider POSTs a logout token; the sessions it names end here."""
    rp = relying_party()
    try:
        claims = rp.verify_logout_token(request.form.get("logout_token", ""))
    except LogoutTokenError as error:
        response = jsonify(error="invalid_request", error_description=str(error))
        response.status_code = 400
    else:
        rp.store.end(sid=claims.get("sid"), sub=claims.get("sub"))
        response = current_app.response_class(status=200)
    # §2.8: the answer must not be cached.
    response.headers["Cache-Control"] = "no-store"
    return response
