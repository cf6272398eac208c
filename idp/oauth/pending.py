"""Authorization requests waiting for the user (sign-in, a forced password change, consent).

A waiting request is kept in the browser's signed session cookie, keyed by a random id that travels in
the ``authz`` query parameter, and is re-validated in full when the user comes back, so nothing is
trusted from the interruption. A request given at /authorize is kept as its parameters, up to
``MAX_PENDING_BYTES`` (a cookie is small); a pushed one (RFC 9126) stays on the server, in its
``pushed_requests`` row, and the cookie holds only that row's id, so a pushed request may be as large
as /par accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from flask import session
from sqlalchemy import delete

from ..crypto import new_secret
from ..extensions import db
from ..models import PushedRequest
from ..runtime import current

# Every tab that started a sign-in has one; the newest few are kept.
MAX_PENDING = 3
# Bounds what is kept in the session cookie for a waiting request given at /authorize.
MAX_PENDING_BYTES = 2048


@dataclass
class PendingRequest:
    id: str
    params: list[tuple[str, str]]
    started_at: int
    # The pushed request (RFC 9126) it came from: its parameters stay in that row, never in the cookie.
    pushed_id: int | None = field(default=None)

    @property
    def pushed(self) -> bool:
        return self.pushed_id is not None

    def fits(self) -> bool:
        if self.pushed:
            return True
        return sum(len(k) + len(v) for k, v in self.params) <= MAX_PENDING_BYTES


def new_pending(params: list[tuple[str, str]], *, pushed_id: int | None = None) -> PendingRequest:
    return PendingRequest(id=new_secret(12), params=params, started_at=current().clock(), pushed_id=pushed_id)


def save_pending(pending: PendingRequest) -> None:
    stored = dict(session.get("pending", {}))
    item: dict = {"started_at": pending.started_at}
    if pending.pushed:
        item["pushed_id"] = pending.pushed_id
    else:
        # Pairs as lists: Flask's session serializer tags every tuple ({" t": [...]}), a larger cookie
        # that costs each request of the sign-in to encode and decode; load_pending makes them tuples.
        item["params"] = [[key, value] for key, value in pending.params]
    stored[pending.id] = item
    newest = sorted(stored.items(), key=lambda entry: entry[1]["started_at"])[-MAX_PENDING:]
    for gone, old in stored.items():
        if gone not in dict(newest) and old.get("pushed_id"):
            _forget_pushed(old["pushed_id"])
    session["pending"] = dict(newest)


def load_pending(pending_id: str) -> PendingRequest | None:
    """The waiting request with this id, unless it is unknown or older than [oauth] interaction_ttl."""
    item = session.get("pending", {}).get(pending_id)
    if not isinstance(item, dict):
        return None
    runtime = current()
    if item["started_at"] + runtime.settings.oauth.interaction_ttl < runtime.clock():
        drop_pending(pending_id)
        return None
    pushed_id = item.get("pushed_id")
    if pushed_id is not None:
        row = db.session.get(PushedRequest, pushed_id)
        if row is None or row.expires_at <= runtime.clock():
            # Purged: the interaction outlived what the provider keeps of it.
            drop_pending(pending_id)
            return None
        params = [(key, value) for key, value in row.params]
    else:
        params = [tuple(p) for p in item.get("params", [])]
    return PendingRequest(id=pending_id, params=params, started_at=item["started_at"], pushed_id=pushed_id)


def drop_pending(pending_id: str) -> None:
    stored = dict(session.get("pending", {}))
    item = stored.pop(pending_id, None)
    if item is not None:
        session["pending"] = stored
        if item.get("pushed_id"):
            _forget_pushed(item["pushed_id"])


def _forget_pushed(pushed_id: int) -> None:
    # Answered or abandoned: its parameters are kept no longer than they are needed.
    db.session.execute(delete(PushedRequest).where(PushedRequest.id == pushed_id))
    db.session.commit()
