"""Authorization requests waiting for the user (sign-in, a forced password change, consent).

A waiting request is kept as its parameters in the browser's signed session cookie, keyed by a random
id that travels in the ``authz`` query parameter, and is re-validated in full when the user comes back,
so nothing is trusted from the interruption.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import session

from ..crypto import new_secret
from ..runtime import current

# Every tab that started a sign-in has one; the newest few are kept.
MAX_PENDING = 3
# Bounds what is kept in the session cookie for a waiting request.
MAX_PENDING_BYTES = 2048


@dataclass
class PendingRequest:
    id: str
    params: list[tuple[str, str]]
    started_at: int
    # Came through a pushed authorization request (RFC 9126); kept in the signed session, never a parameter.
    pushed: bool = False

    def fits(self) -> bool:
        return sum(len(k) + len(v) for k, v in self.params) <= MAX_PENDING_BYTES


def new_pending(params: list[tuple[str, str]], *, pushed: bool = False) -> PendingRequest:
    return PendingRequest(id=new_secret(12), params=params, started_at=current().clock(), pushed=pushed)


def save_pending(pending: PendingRequest) -> None:
    stored = dict(session.get("pending", {}))
    stored[pending.id] = {
        "params": pending.params,
        "started_at": pending.started_at,
        "pushed": pending.pushed,
    }
    newest = sorted(stored.items(), key=lambda item: item[1]["started_at"])[-MAX_PENDING:]
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
    params = [tuple(p) for p in item["params"]]
    return PendingRequest(
        id=pending_id, params=params, started_at=item["started_at"], pushed=bool(item.get("pushed"))
    )


def drop_pending(pending_id: str) -> None:
    stored = dict(session.get("pending", {}))
    if stored.pop(pending_id, None) is not None:
        session["pending"] = stored
