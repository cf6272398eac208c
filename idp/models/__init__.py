"""Database models. Times are integer Unix seconds: portable across SQLite and PostgreSQL and what
authlib and JWT claims use. Columns holding secrets or their digests say so in their names.

May import: SQLAlchemy, authlib's model mixins, ``idp.extensions`` (the declarative base),
``idp.crypto`` (digests). Must not import anything above the models: services, oauth, views, the CLI,
``idp.runtime`` or ``idp.config`` (tests/unit/test_layers.py checks it).
"""

from .account import Account
from .audit import AuditEvent
from .client import OAuth2Client
from .device import DeviceCode
from .key import SigningKey
from .limits import CaptchaUse
from .limits import DailyCounter
from .oauth import AuthorizationCode
from .oauth import Consent
from .oauth import Token
from .outbox import OutboxMessage
from .password import PasswordChangeFlow
from .protocol import PushedRequest
from .protocol import UsedJti
from .recovery import RecoveryFlow
from .registration import InitialAccessToken
from .registration import RegistrationAccessToken
from .reset import ResetFlow
from .session import SsoSession
from .staff import StaffSession
from .staff import StaffUser

__all__ = [
    "Account",
    "AuditEvent",
    "AuthorizationCode",
    "CaptchaUse",
    "Consent",
    "DeviceCode",
    "DailyCounter",
    "InitialAccessToken",
    "OAuth2Client",
    "OutboxMessage",
    "PasswordChangeFlow",
    "PushedRequest",
    "RecoveryFlow",
    "RegistrationAccessToken",
    "ResetFlow",
    "SigningKey",
    "SsoSession",
    "StaffSession",
    "StaffUser",
    "Token",
    "UsedJti",
]
