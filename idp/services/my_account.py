"""«Мой профиль» (/account): what a signed-in migrant sees of their own account and may do about it.

* their sessions on every device: started, last seen, browser and system (from the user agent kept at
  sign-in), an approximate place (from the last address: no geolocation database is shipped, so the
  place is "this computer", "a local network" or the address's network with its last part hidden), and
  the sites signed in to in each;
* ending one session, or every session (which also revokes every token of the account, offline ones
  included): each goes through ``sessions.end_session``, so back-channel logout is sent as for any
  other ending (``events.SessionEnded``);
* the sites they gave access to (a remembered consent, or a live refresh token) and taking it back:
  that client's tokens of the account are revoked and the consent forgotten, so the next sign-in there
  asks again.

Every action is audited and, when the password was last typed longer ago than ``[account]
step_up_age``, needs it typed again first (``needs_step_up``; the view asks).

May import: models, other services. Must not import: Flask, views, oauth.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import SessionSettings
from ..events import EventBus
from ..models import Account
from ..models import Consent
from ..models import OAuth2Client
from ..models import SsoSession
from ..models import Token
from . import audit
from . import credentials
from . import notices
from . import sessions

# -- the device and the place --------------------------------------------------------------------------

# Checked in order: Chromium-based browsers name Chrome and Safari too, Chrome names Safari.
_BROWSERS = (
    ("YaBrowser/", "Яндекс Браузер"),
    ("Edg/", "Microsoft Edge"),
    ("EdgA/", "Microsoft Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)
_VERSION = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Device:
    """What the user agent says, as far as it is recognised: a browser name and major version, a system."""

    browser: str | None
    system: str | None


def describe_user_agent(user_agent: str | None) -> Device:
    text = user_agent or ""
    browser = None
    for marker, name in _BROWSERS:
        at = text.find(marker)
        if at >= 0:
            version = _VERSION.match(text, at + len(marker))
            if marker == "Safari/":
                # Safari's own version is in "Version/17.1", not in the WebKit build after Safari/.
                shown = re.search(r"Version/(\d+)", text)
                version = shown
            browser = f"{name} {version.group(1)}" if version else name
            break
    system = next((name for marker, name in _SYSTEMS if marker in text), None)
    return Device(browser, system)


# Where a session was last used from. Without a geolocation database the "place" is the kind of address
# and, for a public one, its network: enough for a person to tell "my home" from "somewhere else".
THIS_COMPUTER = "this_computer"
LOCAL_NETWORK = "local_network"
INTERNET = "internet"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Place:
    kind: str
    network: str | None = None


def approximate_place(ip: str | None) -> Place:
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return Place(UNKNOWN)
    if address.is_loopback:
        return Place(THIS_COMPUTER)
    if address.is_private or address.is_link_local:
        return Place(LOCAL_NETWORK)
    if address.version == 4:
        first = str(address).rsplit(".", 1)[0]
        return Place(INTERNET, f"{first}.*")
    network = ipaddress.ip_network(f"{address}/48", strict=False)
    return Place(INTERNET, f"{network.network_address}/48")


# -- sessions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionView:
    id: int
    started_at: int
    last_seen_at: int
    auth_time: int
    device: Device
    place: Place
    sites: list[str]
    current: bool


def live_sessions(
    db: Session, account_id: int, *, now: int, settings: SessionSettings, current_id: int | None
) -> list[SessionView]:
    """The account's sessions that are still live, this browser's first, then the most recently used."""
    rows = db.scalars(
        select(SsoSession).where(
            SsoSession.account_id == account_id,
            SsoSession.ended_at.is_(None),
            ~credentials.is_over(SsoSession, now=now, timeouts=settings),
        )
    )
    found = [
        SessionView(
            id=row.id,
            started_at=row.created_at,
            last_seen_at=row.last_seen_at,
            auth_time=row.auth_time,
            device=describe_user_agent(row.user_agent),
            place=approximate_place(row.last_ip or row.ip),
            sites=[client.client_name for client in sessions.session_clients(db, row.sid)],
            current=row.id == current_id,
        )
        for row in rows
    ]
    return sorted(found, key=lambda view: (not view.current, -view.last_seen_at, -view.id))


def needs_step_up(sso: SsoSession, *, now: int, max_age: int) -> bool:
    """The password was last typed in this session longer ago than ``max_age`` seconds."""
    return now - sso.auth_time > max_age


def end_one(
    db: Session, ctx: audit.Context, account: Account, session_id: int, *, now: int, events: EventBus
) -> str | None:
    """End one of the account's live sessions (another device's, or this one); return its sid, or None
    when it is not the account's or no longer live."""
    sso = db.get(SsoSession, session_id)
    if sso is None or sso.account_id != account.id or sso.ended_at is not None:
        return None
    sessions.end_session(db, sso, now=now, events=events)
    device = describe_user_agent(sso.user_agent)
    audit.record(
        db,
        ctx,
        "account.session_ended",
        account_id=account.id,
        details={"browser": device.browser or "", "system": device.system or ""},
    )
    return sso.sid


def end_everywhere(
    db: Session, ctx: audit.Context, account: Account, *, now: int, events: EventBus
) -> list[str]:
    """End every live session of the account, this one included, and revoke every token it still has,
    offline (refresh) tokens of sessions that ended before included; tell the person. Return the sids
    ended."""
    ended = sessions.end_account_sessions(db, account.id, now=now, events=events)
    sessions.revoke_tokens(db, Token.account_id == account.id, now=now)
    details = {"sessions": len(ended)}
    audit.record(db, ctx, "account.signed_out_everywhere", account_id=account.id, details=details)
    notices.notify(db, account, notices.SIGNED_OUT_EVERYWHERE, now=now)
    return ended


# -- sites given access -----------------------------------------------------------------------------------


@dataclass
class Grant:
    client_id: str
    name: str
    scopes: list[str] = field(default_factory=list)
    granted_at: int | None = None
    # A live refresh token: the site can keep reading the data without the person (offline_access).
    offline: bool = False


def _live_refresh(account_id: int, now: int):
    return (
        Token.account_id == account_id,
        Token.refresh_token_hash.is_not(None),
        Token.refresh_token_revoked_at == 0,
        or_(Token.refresh_expires_at.is_(None), Token.refresh_expires_at > now),
    )


def granted_sites(db: Session, account_id: int, *, now: int) -> list[Grant]:
    """Sites the account gave access to: a remembered consent, or a refresh token still live."""
    grants: dict[str, Grant] = {}
    for consent in db.scalars(select(Consent).filter_by(account_id=account_id)):
        grants[consent.client_id] = Grant(
            consent.client_id, consent.client_id, consent.scope.split(), consent.granted_at
        )
    for token in db.scalars(select(Token).where(*_live_refresh(account_id, now))):
        grant = grants.setdefault(token.client_id, Grant(token.client_id, token.client_id))
        grant.offline = True
        grant.scopes = sorted(set(grant.scopes) | set(token.scope.split()))
        grant.granted_at = max(grant.granted_at or 0, token.issued_at)
    if grants:
        clients = db.scalars(select(OAuth2Client).where(OAuth2Client.client_id.in_(grants)))
        names = {client.client_id: client.client_name for client in clients}
        for grant in grants.values():
            grant.name = names.get(grant.client_id) or grant.client_id
    return sorted(grants.values(), key=lambda grant: (grant.name, grant.client_id))


def revoke_site(db: Session, ctx: audit.Context, account: Account, client_id: str, *, now: int) -> bool:
    """Take back a site's access: every token of the account at that client is revoked (refresh and
    access), and the consent is forgotten. False when the site had none."""
    if client_id not in {grant.client_id for grant in granted_sites(db, account.id, now=now)}:
        return False
    sessions.revoke_tokens(db, Token.account_id == account.id, Token.client_id == client_id, now=now)
    db.execute(delete(Consent).where(Consent.account_id == account.id, Consent.client_id == client_id))
    audit.record(db, ctx, "consent.revoked", account_id=account.id, client_id=client_id)
    return True


# -- the person's data, as shown to them ---------------------------------------------------------------


def mask_phone(phone: str | None) -> str:
    """+79161234567 -> +7 (916) ***-**-67; another country's number keeps its first three digits and
    its last two. Enough for the person to recognise it, not enough to learn it over a shoulder."""
    digits = (phone or "").lstrip("+")
    if not digits.isdigit() or len(digits) < 7:
        return ""
    if digits.startswith("7") and len(digits) == 11:
        return f"+7 ({digits[1:4]}) ***-**-{digits[-2:]}"
    return f"+{digits[:3]} {'*' * (len(digits) - 5)} {digits[-2:]}"


def mask_email(email: str | None) -> str:
    """alisher.karimov@example.com -> a***@example.com."""
    local, at, domain = (email or "").partition("@")
    if not at or not local:
        return ""
    return f"{local[0]}***@{domain}"
