"""Grants and grant extensions, closing authlib's gaps with its own hooks:

* PKCE is S256 only (RFC 9700 §2.1.1) and required of public clients at the authorization endpoint;
* codes are single-use under concurrency, and a reused code revokes its tokens (RFC 6749 §4.1.2);
* refresh tokens rotate, and a replayed one revokes its family (RFC 9700 §4.14.2), except within
  ``[oauth] refresh_grace`` of its rotation while its successor is unused (a lost token response);
* ``request`` / ``request_uri`` / ``registration`` are refused (OIDC Core §6, §7.2.1);
* ID tokens carry ``iss``, the real ``auth_time``, ``amr`` and ``sid``.
"""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode as _OpenIDCode
from authlib.oidc.core import OpenIDToken as _OpenIDToken
from authlib.oidc.core.errors import RegistrationNotSupportedError
from authlib.oidc.core.errors import RequestNotSupportedError
from authlib.oidc.core.errors import RequestURINotSupportedError
from flask import g
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from ..crypto import digest
from ..extensions import db
from ..models import Account
from ..models import AuthorizationCode
from ..models import SsoSession
from ..models.base import keeping_loaded
from ..models.oauth import ACR_PASSWORD
from ..runtime import current
from ..runtime import settings
from ..services import clients
from . import access_tokens
from . import claims
from . import dpop
from . import keys
from . import response_modes
from . import storage
from .claims import UserInfo
from .subjects import subject

log = logging.getLogger(__name__)

CONFIDENTIAL_AUTH_METHODS = list(clients.CONFIDENTIAL_AUTH_METHODS)
ALL_AUTH_METHODS = list(clients.AUTH_METHODS)


def _now() -> int:
    return current().clock()


def _active_account(account_id: int | None) -> Account | None:
    account = db.session.get(Account, account_id) if account_id else None
    return account if account is not None and account.is_active else None


# The statements of a code flow, built once: only their parameters change from one request to the next.
_CODE_WITH_SESSION_AND_ACCOUNT = (
    select(AuthorizationCode, SsoSession.ended_at, Account)
    .outerjoin(SsoSession, SsoSession.sid == AuthorizationCode.sid)
    .outerjoin(Account, Account.id == AuthorizationCode.account_id)
    .where(
        AuthorizationCode.code_hash == bindparam("code_hash"),
        AuthorizationCode.client_id == bindparam("client_id"),
    )
)
_NEW_CODE = insert(AuthorizationCode.__table__)
# Claims the code: only one redemption finds it unused (RFC 6749 §4.1.2). The ORM's synchronisation of
# loaded rows is off: it searched the session for matching rows on every redemption, and the one row
# concerned is set by the caller.
_CLAIM_CODE = (
    update(AuthorizationCode)
    .where(AuthorizationCode.id == bindparam("code_id"), AuthorizationCode.used_at.is_(None))
    .values(used_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)
_LIVE_CODE_WITH_NONCE = select(AuthorizationCode.id).where(
    AuthorizationCode.client_id == bindparam("client_id"),
    AuthorizationCode.nonce == bindparam("nonce"),
    AuthorizationCode.expires_at > bindparam("now"),
)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    # The redirect_uri this grant's request was validated for (a grant object serves one request).
    _validated: str | None = None
    # The account of the code being redeemed, read with it (query_authorization_code).
    _account: Account | None = None
    # The resource indicators of the request (RFC 8707), checked with it.
    _resources: list[str] = []

    def validate_authorization_request(self):
        # authlib's create_authorization_response validates again the grant that get_consent_grant has
        # just validated in the same request: the nonce query and every check twice (issue 12). Once is
        # enough; a grant is built afresh for each request, so nothing is carried across requests.
        if self._validated is not None:
            return self._validated
        redirect_uri = super().validate_authorization_request()
        refuse_unsupported_parameters(self, redirect_uri)
        response_modes.validate(self, redirect_uri)
        claims_request(self, redirect_uri)
        dpop.requested_jkt(self, redirect_uri)
        self._resources = access_tokens.authorization_resources(self, redirect_uri)
        if not getattr(self.request, "pushed", False) and _par_required(self.request.client):
            raise InvalidRequestError(
                "This client must push its authorization requests to the PAR endpoint (RFC 9126).",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        self._validated = redirect_uri
        return redirect_uri

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # authlib quotes an unregistered redirect_uri in error_description and raises ValueError when it
        # holds characters RFC 6749 §4.1.2.1 forbids there (control characters, quotes, non-ASCII).
        redirect_uri = request.payload.redirect_uri
        if redirect_uri and not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError("'redirect_uri' is not registered for this client.")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def save_authorization_code(self, code: str, request) -> None:
        # The view passes the SSO session as the grant user: the code needs its sid and auth_time.
        sso = request.user
        data = request.payload.data
        now = _now()
        # A Core INSERT: nothing in this request reads the row again, so no ORM object or flush is made.
        db.session.execute(
            _NEW_CODE,
            dict(
                code_hash=digest(code),
                client_id=request.client.client_id,
                account_id=sso.account_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                nonce=data.get("nonce"),
                auth_time=sso.auth_time,
                amr=sso.amr,
                sid=sso.sid,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                claims=claims.stored(
                    claims.granted_claims(
                        claims.parse_claims_request(data.get("claims")), request.client.scope
                    )
                ),
                # RFC 9449 §10 (validated with the request, validate_authorization_request).
                dpop_jkt=data.get("dpop_jkt") if dpop.enabled() else None,
                resources=access_tokens.stored_resources(self._resources),
                created_at=now,
                expires_at=now + settings().oauth.code_ttl,
            ),
        )
        db.session.commit()

    def create_token_response(self):
        # The code, its account and the client are read once: the commit of the new token (save_token)
        # does not expire them, so the ID token made after it is built from the rows already loaded
        # instead of three more SELECTs (issue 12).
        with keeping_loaded(db.session):
            return super().create_token_response()

    def query_authorization_code(self, code, client):
        if not isinstance(code, str) or len(code) > 256:
            return None
        # One statement for the code, whether its session has ended, and its account (which
        # authenticate_user then finds in the session's identity map).
        found = db.session.execute(
            _CODE_WITH_SESSION_AND_ACCOUNT, {"code_hash": digest(code), "client_id": client.client_id}
        ).first()
        if found is None:
            return None
        # Held here: the session's identity map keeps rows only while something refers to them.
        item, session_ended_at, self._account = found
        now = _now()
        claimed = db.session.execute(_CLAIM_CODE, {"code_id": item.id, "now": now}).rowcount
        if claimed:
            # The row loaded above, as the claim left it (the statement does not touch loaded rows).
            set_committed_value(item, "used_at", now)
        if not claimed:
            # RFC 6749 §4.1.2: a code used twice is refused, and tokens issued from it SHOULD be revoked.
            storage.revoke_code_tokens(item.id, now)
            db.session.commit()
            return None
        # why: no commit here. The claim commits with the tokens (save_token), so a concurrent replay
        # waits on the claimed row and then finds, and revokes, the tokens issued from it. A request
        # that fails later (wrong PKCE verifier) rolls the claim back with everything else.
        # The relying parties of a session are told when it ends (back-channel logout); tokens redeemed
        # from its code afterwards would outlive that logout.
        if item.expires_at <= now or (item.sid and session_ended_at is not None):
            return None
        return item

    def delete_authorization_code(self, authorization_code) -> None:
        # why: the row stays, marked used, so a second redemption is recognised as a replay.
        pass

    def authenticate_user(self, authorization_code):
        account = self._account
        if account is None or account.id != authorization_code.account_id:
            return _active_account(authorization_code.account_id)
        return account if account.is_active else None


def _par_required(client) -> bool:
    # RFC 9126 §5-6: for every client ([par] required) or for this one.
    par = settings().par
    return par.enabled and (par.required or client.require_pushed_authorization_requests)


def refuse_unsupported_parameters(grant, redirect_uri: str) -> None:
    data = grant.request.payload.data
    state = grant.request.payload.state
    if "request" in data:
        raise RequestNotSupportedError(redirect_uri=redirect_uri, state=state)
    if "request_uri" in data:
        raise RequestURINotSupportedError(redirect_uri=redirect_uri, state=state)
    if "registration" in data:
        raise RegistrationNotSupportedError(redirect_uri=redirect_uri, state=state)


def claims_request(grant, redirect_uri: str) -> dict:
    """The ``claims`` parameter (OIDC Core §5.5), checked: malformed is an invalid_request, an essential
    ``acr`` this provider cannot meet fails the authentication (§5.5.1.1)."""
    state = grant.request.payload.state
    try:
        parsed = claims.parse_claims_request(grant.request.payload.data.get("claims"))
    except claims.ClaimsRequestError as error:
        raise InvalidRequestError(str(error), redirect_uri=redirect_uri, state=state) from error
    if claims.acr_refused(parsed, ACR_PASSWORD):
        raise AccessDeniedError(
            "The requested authentication context is not available.", redirect_uri=redirect_uri, state=state
        )
    return parsed


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only; public clients must send it with the authorization request."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge and grant.request.client.is_public:
            raise InvalidRequestError("Public clients must use PKCE: missing 'code_challenge'.")
        if challenge and data.get("code_challenge_method") != "S256":
            # why: RFC 7636 §4.3 defaults a missing method to "plain", which RFC 9700 §2.1.1 rules out.
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        return super().validate_code_challenge(grant, redirect_uri)


def _id_token_key(alg: str):
    """The key that signs this request's ID token, the same for its header and its signature. Asked for
    twice (authlib wants the header and the key apart), the newest active key can change in between: a
    rotated-in key becomes active at a second boundary, or the key cache reloads. The token would then
    name one key in ``kid`` and be signed by another, and fail every verification (the two-host test
    caught it). So the first answer is kept for the request (``g``: the extension objects are shared
    between requests and threads)."""
    chosen = g.setdefault("id_token_keys", {})
    if alg not in chosen:
        chosen[alg] = keys.cache().signing_key(alg)
    return chosen[alg]


class _IdTokenClaims:
    """Shared by the code and refresh grants: who signs, with which key, and the session claims."""

    def get_client_claims(self, client):
        now = _now()
        return {
            "iss": settings().server.issuer,
            # A string audience: simplest for relying parties and unambiguous for logout (no azp needed).
            "aud": client.client_id,
            "iat": now,
            "exp": now + client.lifetime("id_token_ttl", settings().oauth.id_token_ttl),
        }

    def get_client_algorithm(self, client):
        return client.id_token_signed_response_alg

    def resolve_client_private_key(self, client):
        return _id_token_key(self.get_client_algorithm(client))

    def get_encode_header(self, client):
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "typ": "JWT", "kid": _id_token_key(alg).kid}

    def get_authorization_code_claims(self, authorization_code):
        # The code (or, on refresh, the token's session: SessionClaims) knows the account and the client,
        # so sub — pairwise or not — and the individually requested claims are added here.
        result = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            result["sid"] = authorization_code.sid
        account = db.session.get(Account, authorization_code.account_id)
        client = storage.query_client(authorization_code.client_id)
        # OIDC Core §5.5: claims asked for in the ID token by the claims parameter (within the scopes the
        # client is registered for, and consented to with them).
        names = claims.loaded(authorization_code.claims, "id_token")
        result.update(claims.requested_claims(account, authorization_code.scope, names))
        result["sub"] = subject(account, client)
        return result

    def generate_user_info(self, user, scope):
        # OIDC Core §5.4: with an access token issued, profile claims come from UserInfo; the ID token
        # carries only the subject (added with the code's claims above), which keeps personal data out of
        # tokens that travel and get logged, unless the claims parameter asks for them there.
        return UserInfo()


class OpenIDCode(_IdTokenClaims, _OpenIDCode):
    def exists_nonce(self, nonce, request):
        if "\x00" in nonce:
            # A NUL byte is no part of a real nonce, and PostgreSQL text cannot hold one.
            raise InvalidRequestError("Invalid 'nonce' parameter.")
        if request.user is None:
            # No browser signed in: this request issues no code, it only parks the request for the
            # sign-in (or refuses it, prompt=none). The replay check is made where the code is issued
            # (the sign-in's POST, or /authorize/continue, with the session), so it runs once a sign-in.
            return False
        # OIDC Core §15.5.2: a nonce seen with a live code for this client is a replay.
        found = db.session.scalar(
            _LIVE_CODE_WITH_NONCE, {"client_id": request.payload.client_id, "nonce": nonce, "now": _now()}
        )
        return found is not None


class OpenIDRefreshToken(_IdTokenClaims, _OpenIDToken):
    """A fresh ID token on refresh (OIDC Core §12.2), with the original auth_time and sid, no nonce."""


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    # The unused successor that a retry within the grace period replaces (see authenticate_refresh_token).
    _replaced = None

    def authenticate_refresh_token(self, refresh_token):
        token = storage.find_token(refresh_token, "refresh_token")
        if token is None:
            return None
        now = _now()
        if token.refresh_token_revoked_at:
            successor = None
            if token.check_client(self.request.client):
                successor = storage.unused_successor(token, now=now, grace=settings().oauth.refresh_grace)
            if successor is None:
                # RFC 9700 §4.14.2: a rotated-out refresh token came back, so one of its holders is not
                # the client. Revoke the whole family; the client signs the user in again.
                storage.revoke_family(token.family_id, now)
                db.session.commit()
                return None
            # The grace (RFC 9700 §4.14.2 allows one): rotated moments ago into a token nobody has used,
            # so the answer of that rotation was most likely lost. The client gets a fresh pair; the
            # successor it never received is revoked in its place (validate_token_request).
            log.info("refresh token of client %s presented again within the grace period", token.client_id)
            self._replaced = successor
        if token.refresh_expires_at is None or token.refresh_expires_at <= now:
            return None
        if _active_account(token.account_id) is None:
            # RFC 6749 §5.2: a blocked account's refresh token is as good as revoked, so invalid_grant
            # (authlib would answer invalid_request for a grant without a user).
            return None
        return token

    def validate_token_request(self):
        super().validate_token_request()
        token = self.request.refresh_token
        if not storage.claim_refresh_token(self._replaced or token, _now()):
            storage.revoke_family(token.family_id, _now())
            db.session.commit()
            raise InvalidGrantError()
        # why: no commit here. The claim and the new token (save_token) commit together, so a replay
        # racing this rotation waits on the claimed row and its revoke_family then sees the new token;
        # committed apart, the new token could land after that sweep and outlive its revoked family.
        # The ID token extension reads auth_time/amr/sid from here; the old token carries them.
        self.request.authorization_code = SessionClaims(token)

    def authenticate_user(self, refresh_token):
        return _active_account(refresh_token.account_id)

    def revoke_old_credential(self, refresh_token):
        # why: already done, atomically, in validate_token_request.
        pass


class SessionClaims:
    """The session behind a grant that has no authorization code — a rotated refresh token, an approved
    device code — in the shape the ID token extension reads a code in (sid, auth_time, amr, claims)."""

    id = None

    def __init__(self, row, *, amr: str | None = None):
        # ``amr`` stands in where the row holds none (a device code: its approval was a password sign-in).
        self.sid, self.auth_time, self.amr = row.sid, row.auth_time, row.amr or amr
        self.account_id, self.client_id, self.scope = row.account_id, row.client_id, row.scope
        self.claims = getattr(row, "claims", None)
        # RFC 8707: the resources granted with the row (a device code), read by TokenBinding.
        self.resources = getattr(row, "resources", None)

    def get_nonce(self):
        return None

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return ACR_PASSWORD

    def get_amr(self):
        return self.amr.split() if self.amr else []


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        requested = scope_to_list(self.request.payload.scope) or []
        allowed = set(scope_to_list(self.request.client.scope) or [])
        # No user is involved, so user scopes mean nothing here.
        if any(s not in allowed or s in ("openid", "offline_access") for s in requested):
            raise InvalidScopeError()
