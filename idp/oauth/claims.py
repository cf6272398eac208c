"""Scopes and the claims they release (OIDC Core §5.4), plus the ``patent`` scope of this provider."""

from __future__ import annotations

from authlib.oidc.core import UserInfo as _UserInfo

from ..models import Account
from ..services import clients

SCOPES_SUPPORTED = list(clients.SCOPES)


class UserInfo(_UserInfo):
    REGISTERED_CLAIMS = _UserInfo.REGISTERED_CLAIMS + ["patent_application_number"]
    SCOPES_CLAIMS_MAPPING = {
        **_UserInfo.SCOPES_CLAIMS_MAPPING,
        "openid": ["sub"],
        "patent": ["patent_application_number"],
    }


# What user_info() can actually release, for discovery; authlib's mapping lists claims we never hold.
CLAIMS_SUPPORTED = [
    "sub",
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "locale",
    "updated_at",
    "phone_number",
    "phone_number_verified",
    "email",
    "email_verified",
    "patent_application_number",
]


def user_info(account: Account, scope: str) -> UserInfo:
    """Claims for UserInfo. The phone is verified: the Migration Center took it from the application."""
    claims = UserInfo(
        sub=account.sub,
        name=account.full_name,
        family_name=account.surname,
        given_name=account.given_name,
        locale=account.locale,
        updated_at=account.updated_at,
        phone_number=account.phone,
        phone_number_verified=True,
        patent_application_number=account.login,
    )
    if account.middle_name:
        claims["middle_name"] = account.middle_name
    if account.email:
        claims["email"] = account.email
        # why: an operator typed it from the application; nobody has proved control of the mailbox yet.
        claims["email_verified"] = False
    return claims.filter(scope)
