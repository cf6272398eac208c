"""Database models. Times are integer Unix seconds: portable across SQLite and PostgreSQL and what
authlib and JWT claims use. Columns holding secrets or their digests say so in their names."""

from .account import Account
from .client import OAuth2Client
from .key import SigningKey
from .limits import CaptchaChallenge
from .limits import DailyCounter
from .oauth import AuthorizationCode
from .oauth import Consent
from .oauth import Token
from .recovery import RecoveryFlow
from .session import SsoSession
from .staff import AuditEvent
from .staff import InitialAccessToken
from .staff import RegistrationAccessToken
from .staff import StaffSession
from .staff import StaffUser

__all__ = [
    "Account",
    "AuditEvent",
    "AuthorizationCode",
    "CaptchaChallenge",
    "Consent",
    "DailyCounter",
    "InitialAccessToken",
    "OAuth2Client",
    "RecoveryFlow",
    "RegistrationAccessToken",
    "SigningKey",
    "SsoSession",
    "StaffSession",
    "StaffUser",
    "Token",
]
