"""The ``sub`` a relying party sees (OIDC Core §8): the account's public identifier, or for a client
registered with ``subject_type`` pairwise, one derived per sector (§8.1, ``services.subjects``). Every
place that hands a ``sub`` to a client asks here: the ID token, UserInfo, introspection, logout tokens,
and the checks of an ``id_token_hint``."""

from __future__ import annotations

from ..models import Account
from ..models import OAuth2Client
from ..runtime import settings
from ..services import subjects
from .live import LiveAccount


def subject(account: Account | LiveAccount, client: OAuth2Client | None) -> str:
    if client is None or client.subject_type != subjects.PAIRWISE:
        return account.sub
    config = settings()
    key = subjects.pairwise_key(config.subjects.pairwise_key, config.server.secret_key)
    sector = subjects.sector_of(client.redirect_uris, client.sector_identifier_uri)
    return subjects.pairwise_subject(key, sector, account.sub)
