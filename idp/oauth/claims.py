"""Scopes and the claims they release (OIDC Core §5.4), plus the ``patent`` scope of this provider."""

from __future__ import annotations

import json

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo as _UserInfo

from ..models import Account
from ..services import clients
from .live import LiveAccount

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


def user_info(account: Account | LiveAccount, scope: str) -> UserInfo:
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


# -- the claims request parameter (OIDC Core §5.5) ---------------------------------------------------------

# The scope each releasable claim belongs to: a claim asked for individually needs the relying party to be
# registered for its scope, and the person's consent to that scope, as if the scope had been asked for.
CLAIM_SCOPE = {
    claim: scope
    for scope, names in UserInfo.SCOPES_CLAIMS_MAPPING.items()
    for claim in names
    if claim in CLAIMS_SUPPORTED and scope != "openid"
}
# The targets of §5.5: the ID token and the UserInfo response. Other members are ignored (§5.5: "MUST be
# ignored" when not understood).
TARGETS = ("id_token", "userinfo")


class ClaimsRequestError(ValueError):
    """A ``claims`` parameter that is not the JSON object of §5.5."""


def parse_claims_request(raw: str | None) -> dict[str, dict]:
    """The ``claims`` parameter as {"id_token": {name: request-or-None}, "userinfo": {...}}."""
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ClaimsRequestError("'claims' is not JSON.") from exc
    if not isinstance(value, dict):
        raise ClaimsRequestError("'claims' must be a JSON object.")
    parsed: dict[str, dict] = {}
    for target in TARGETS:
        members = value.get(target)
        if members is None:
            continue
        if not isinstance(members, dict):
            raise ClaimsRequestError(f"'claims.{target}' must be a JSON object.")
        for name, request in members.items():
            _check_member(f"claims.{target}.{name}", name, request)
        parsed[target] = members
    return parsed


def _check_member(where: str, name: str, request) -> None:
    # §5.5.1: each member is null (a default request) or an object whose "essential" is a boolean and
    # "values" an array; "value" may be any JSON value, except for sub, which is compared with a sub.
    if request is None:
        return
    if not isinstance(request, dict):
        raise ClaimsRequestError(f"'{where}' must be null or an object.")
    if not isinstance(request.get("essential", False), bool):
        raise ClaimsRequestError(f"'{where}.essential' must be a boolean.")
    if not isinstance(request.get("values", []), list):
        raise ClaimsRequestError(f"'{where}.values' must be an array.")
    if name == "sub":
        wanted = ([request["value"]] if "value" in request else []) + request.get("values", [])
        if not all(isinstance(value, str) for value in wanted):
            raise ClaimsRequestError(f"'{where}' must ask for string values.")


def subject_accepted(parsed: dict[str, dict], sub: str) -> bool:
    """§3.1.2.2 and §5.5.1: a ``sub`` asked for with a ``value`` (or ``values``) is a demand, not a
    preference — the provider answers only for that user ("MUST NOT reply with an ID Token or Access
    Token for a different user"). The other claims' value and values are requests only: the claim is
    returned with the account's own value (§5.5.1: the OP returns it as it is)."""
    for members in parsed.values():
        request = members.get("sub")
        if not isinstance(request, dict):
            continue
        wanted = ([request["value"]] if "value" in request else []) + request.get("values", [])
        if wanted and sub not in wanted:
            return False
    return True


def acr_refused(parsed: dict[str, dict], acr: str) -> bool:
    """§5.5.1.1: an essential ``acr`` request whose value(s) this provider cannot meet fails the
    authentication; a voluntary one (``acr_values``, or not essential) gets the acr there is."""
    request = parsed.get("id_token", {}).get("acr")
    if not isinstance(request, dict) or not request.get("essential"):
        return False
    wanted = request.get("values") or ([request["value"]] if "value" in request else [])
    return bool(wanted) and acr not in wanted


def granted_claims(parsed: dict[str, dict], allowed_scope: str) -> dict[str, list[str]]:
    """The individual claims of a claims request this client may get: known, releasable ones whose scope
    the client is registered for. Stored with the code and token as JSON."""
    allowed = set(scope_to_list(allowed_scope) or [])
    return {
        target: sorted(name for name in members if CLAIM_SCOPE.get(name) in allowed)
        for target, members in parsed.items()
        if any(CLAIM_SCOPE.get(name) in allowed for name in members)
    }


def implied_scopes(granted: dict[str, list[str]]) -> set[str]:
    """The scopes the person consents to for the individually requested claims."""
    return {CLAIM_SCOPE[name] for names in granted.values() for name in names}


def stored(granted: dict[str, list[str]]) -> str | None:
    return json.dumps(granted, sort_keys=True) if granted else None


def loaded(raw: str | None, target: str) -> list[str]:
    """The claim names stored for ``target`` (id_token or userinfo)."""
    if not raw:
        return []
    try:
        names = json.loads(raw).get(target, [])
    except (ValueError, AttributeError):
        return []
    return [name for name in names if name in CLAIM_SCOPE]


def requested_claims(account: Account | LiveAccount, scope: str, names: list[str]) -> dict:
    """The values of individually requested claims (those the account has)."""
    if not names:
        return {}
    everything = user_info(account, " ".join(sorted({"openid", *CLAIM_SCOPE.values()})))
    return {name: everything[name] for name in names if name in everything}


def consent_scope(grant) -> str:
    """What the person consents to for a (validated) authorization request: its scopes and those of the
    claims it asks for individually (OIDC Core §5.5), so no claim reaches a relying party unconsented."""
    try:
        parsed = parse_claims_request(grant.request.payload.data.get("claims"))
    except ClaimsRequestError:
        parsed = {}
    scopes = set(scope_to_list(grant.request.scope) or [])
    scopes |= implied_scopes(granted_claims(parsed, grant.request.client.scope))
    return " ".join(scope for scope in SCOPES_SUPPORTED if scope in scopes)
