"""Events that services emit and ``create_app`` wires to their subscribers.

A service emits an event with the database session it is working in, so a subscriber can write rows in
the same transaction (and the event is then committed or rolled back with the change that caused it).
Subscribers run synchronously, in the order they subscribed; whatever must wait for the commit or leave
the process (HTTP to relying parties) is the subscriber's own business.

May import: the standard library, SQLAlchemy (types only). Must not import: Flask, views, oauth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class SessionEnded:
    """A migrant's SSO session ended: logout, a timeout noticed later, a password change, an operator's
    action. The relying parties that took part are told (OpenID Connect Back-Channel Logout 1.0)."""

    sid: str
    account_id: int
    at: int


Subscriber = Callable[[Session, Any], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = defaultdict(list)

    def subscribe(self, event_type: type, subscriber: Subscriber) -> None:
        self._subscribers[event_type].append(subscriber)

    def emit(self, db: Session, event: object) -> None:
        for subscriber in self._subscribers[type(event)]:
            subscriber(db, event)
