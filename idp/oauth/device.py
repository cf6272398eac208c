"""The device authorization grant (RFC 8628) on authlib's ``rfc8628`` extension points.

1. The device (a kiosk, a television) POSTs to ``/device/authorize`` (§3.1) and gets a ``device_code``,
   a ``user_code`` (8 letters of RFC 8628 §6.1's 20-consonant alphabet, shown as ``BCDF-GHJK``), the
   ``verification_uri`` (``/device``) and ``verification_uri_complete``, ``expires_in`` and ``interval``.
   Both codes are stored as SHA-256 digests only. ``resource`` (RFC 8707, one or more) is checked as at
   /authorize (``invalid_target``) and bound to the device code: the tokens' audience follows it.
2. The person opens ``/device`` on a phone, types the code («Введите код с экрана»), signs in if needed
   and allows or refuses (``views/device.py``); guessing codes there is rate-limited per IP.
3. The device polls ``/token`` with ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` (§3.4):
   ``authorization_pending`` until the person decides, ``slow_down`` (and 5 s more from then on, §3.5)
   when it polls sooner than its interval, ``access_denied``, ``expired_token``, or the tokens — once:
   the approval is claimed atomically, so a second poll after success is ``invalid_grant``. With
   ``openid`` in the scope the answer carries an ID token of the approving session.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from authlib.oauth2.rfc8628 import AuthorizationPendingError
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as _DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant
from authlib.oauth2.rfc8628 import ExpiredTokenError
from authlib.oauth2.rfc8628 import SlowDownError
from authlib.oidc.core import OpenIDToken as _OpenIDToken
from flask import g
from sqlalchemy import select
from sqlalchemy import update

from ..crypto import digest
from ..extensions import db
from ..models import Account
from ..models.device import APPROVED
from ..models.device import DENIED
from ..models.device import PENDING
from ..models.device import USED
from ..models.device import DeviceCode
from ..runtime import current
from ..runtime import settings
from ..urls import public_url
from . import access_tokens
from .grants import ALL_AUTH_METHODS
from .grants import SessionClaims
from .grants import _IdTokenClaims

# RFC 8628 §3.5: each slow_down adds this to the interval.
SLOW_DOWN_STEP = 5
USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"


def normalize_user_code(typed: str) -> str:
    """RFC 8628 §6.1: case and punctuation do not matter when the person types the code."""
    return "".join(c for c in (typed or "").upper() if c in USER_CODE_LETTERS)[:16]


def find_pending(user_code: str) -> DeviceCode | None:
    """The pending, unexpired request of a typed user code, or None."""
    normalized = normalize_user_code(user_code)
    if len(normalized) != 8:
        return None
    row = db.session.scalar(select(DeviceCode).filter_by(user_code_hash=digest(normalized)))
    if row is None or row.status != PENDING or row.is_expired(current().clock()):
        return None
    return row


def decide(row: DeviceCode, sso, *, approved: bool) -> bool:
    """Record the person's answer; False if the request was decided or expired in the meantime."""
    now = current().clock()
    values = {"status": APPROVED if approved else DENIED, "decided_at": now}
    if approved:
        values.update(account_id=sso.account_id, sid=sso.sid, auth_time=sso.auth_time, amr=sso.amr)
    done = db.session.execute(
        update(DeviceCode)
        .where(DeviceCode.id == row.id, DeviceCode.status == PENDING, DeviceCode.expires_at > now)
        .values(**values)
    ).rowcount
    db.session.commit()
    return bool(done)


class DeviceAuthorizationEndpoint(_DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    @property
    def EXPIRES_IN(self):  # noqa: N802 - authlib's attribute name
        return settings().device.code_ttl

    @property
    def INTERVAL(self):  # noqa: N802
        return settings().device.interval

    def authenticate_client(self, request):
        client = super().authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            # RFC 8628 §3.2 refers to RFC 6749 §5.2: a client not registered for the grant.
            raise UnauthorizedClientError("The client is not registered for the device authorization grant.")
        if any(len(values) > 1 for name, values in request.payload.datalist.items() if name != "resource"):
            raise InvalidRequestError("Repeated request parameter.")
        # RFC 8707 §2 (as at /authorize): the resources the tokens will be for, bound to the device code.
        # save_device_credential is not given the request, so they wait for it in the request context.
        g.idp_device_resources = access_tokens.checked_resources(request, client)
        return client

    def get_verification_uri(self):
        return public_url("device.start")

    def save_device_credential(self, client_id, scope, data):
        now = current().clock()
        client = self.server.query_client(client_id)
        db.session.add(
            DeviceCode(
                device_code_hash=digest(data["device_code"]),
                user_code_hash=digest(normalize_user_code(data["user_code"])),
                client_id=client_id,
                # Scopes the client is not registered for are dropped, as at /authorize.
                scope=client.get_allowed_scope(scope or "openid"),
                created_at=now,
                expires_at=now + data["expires_in"],
                interval=data["interval"],
                status=PENDING,
                resources=access_tokens.stored_resources(g.get("idp_device_resources") or []),
            )
        )
        db.session.commit()


class DeviceCodeGrant(_DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def query_device_credential(self, device_code):
        if not isinstance(device_code, str) or len(device_code) > 256:
            return None
        return db.session.scalar(select(DeviceCode).filter_by(device_code_hash=digest(device_code)))

    def validate_device_credential(self, credential):
        now = current().clock()
        if credential.status == USED:
            # Tokens were issued for it already: the code is spent (RFC 6749 §5.2).
            raise InvalidGrantError()
        if credential.is_expired(now):
            raise ExpiredTokenError()
        if credential.status == DENIED:
            raise AccessDeniedError()
        if credential.status == APPROVED:
            claimed = db.session.execute(
                update(DeviceCode)
                .where(DeviceCode.id == credential.id, DeviceCode.status == APPROVED)
                .values(status=USED)
            ).rowcount
            account = db.session.get(Account, credential.account_id) if claimed else None
            if account is None or not account.is_active:
                db.session.commit()
                raise InvalidGrantError()
            # The ID token (OpenIDDeviceToken) and save_token read the session from here, as from a code.
            self.request.authorization_code = SessionClaims(credential, amr="pwd")
            # why: no commit here; the claim commits with the tokens (save_token).
            return account
        too_soon = (
            credential.last_polled_at is not None and now - credential.last_polled_at < credential.interval
        )
        values = {"last_polled_at": now}
        if too_soon:
            values["interval"] = credential.interval + SLOW_DOWN_STEP
        db.session.execute(update(DeviceCode).where(DeviceCode.id == credential.id).values(**values))
        db.session.commit()
        if too_soon:
            raise SlowDownError()
        raise AuthorizationPendingError()

    def query_user_grant(self, user_code):  # pragma: no cover - validate_device_credential decides
        return None

    def should_slow_down(self, credential):  # pragma: no cover - validate_device_credential decides
        return False


class OpenIDDeviceToken(_IdTokenClaims, _OpenIDToken):
    """An ID token for a device grant with ``openid`` (the approving session's auth_time, sid, acr)."""
