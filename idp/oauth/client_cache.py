"""The per-process cache of clients behind ``storage.query_client`` (issue 12).

Every token, introspection and revocation request authenticates a client, and UserInfo looks up the
token's client: without a cache that is a query (and an ORM object built) on each of them. Here a client
read from the database is kept for ``[oauth] client_cache_ttl`` seconds as a detached snapshot; each
request gets its own session-bound copy (``Session.merge(load=False)``: no query), so code that holds
``request.client`` sees an ordinary persistent object.

Invalidation, so that a change takes effect without waiting for the TTL where it can be seen:

* any flush that updates or deletes an ``OAuth2Client`` (the console, the CLI, RFC 7592's PUT and
  DELETE, ``set_enabled``, ``rotate_secret``...) drops that client from every cache of this process,
  at the flush and again at the commit (a request that re-read the old row in between is dropped too);
* a bulk ``UPDATE``/``DELETE`` on ``oauth2_clients`` through the ORM empties the caches.

A change made in another process or host (or in SQL by hand) is seen within the TTL. That is why every
token is checked against its client in the database where it is used (``storage.find_live_token``):
a token issued in that window to a client just disabled is refused at introspection and UserInfo.
Only clients that exist and are enabled are cached; an unknown ``client_id`` always goes to the
database (a stranger cannot fill the cache).

The same cache keeps the CORS origins (``cors.allowed_origins``: the web origins of every enabled
client's redirect URIs), read on every cross-origin request otherwise. Any change to any client,
a new one included, forgets them; a change made elsewhere is seen within the TTL, as for clients.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm import make_transient_to_detached

from ..models import OAuth2Client

# No deployment has more clients than this; past it the cache starts over rather than grow.
MAX_CLIENTS = 1000

_CACHES: weakref.WeakSet[ClientCache] = weakref.WeakSet()
# session.info keys: the client_ids this session changed, and whether it changed clients in bulk.
_CHANGED = "idp_clients_changed"
_ALL = "idp_clients_changed_in_bulk"


class ClientCache:
    """Snapshots of enabled clients by client_id, each for ``ttl`` seconds (0: nothing is kept)."""

    def __init__(self, ttl: int):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, OAuth2Client]] = {}
        self._origins: tuple[float, frozenset[str]] | None = None
        # Bumped by every drop: a set of origins read from the database while a client changed (the
        # change committed between the read and the store) is not kept.
        self._generation = 0
        self._lock = threading.Lock()
        _CACHES.add(self)

    def origins(self, session: Session, load: Callable[[], set[str]]) -> frozenset[str]:
        """The CORS origins: the kept set while fresh, else ``load()`` (kept if nothing changed meanwhile
        and ``session`` has no uncommitted change to clients, whose view is not everyone's)."""
        entry = self._origins
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        generation = self._generation
        origins = frozenset(load())
        if self.ttl and _CHANGED not in session.info and _ALL not in session.info:
            with self._lock:
                if generation == self._generation:
                    self._origins = (time.monotonic(), origins)
        return origins

    def get(self, client_id: str) -> OAuth2Client | None:
        """The snapshot of ``client_id`` if one is fresh."""
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] >= self.ttl:
            self._entries.pop(client_id, None)
            return None
        return entry[1]

    def put(self, client: OAuth2Client, session: Session) -> None:
        """Keep a detached snapshot of ``client``, a clean persistent object of ``session``, which goes on
        using it as before (its own identity map keeps it; the snapshot is a copy)."""
        if not self.ttl or client in session.dirty or client in session.deleted:
            return
        if _CHANGED in session.info or _ALL in session.info:
            return  # this session changed clients and has not committed: its view is not everyone's
        snapshot = OAuth2Client(**{column: getattr(client, column) for column in _COLUMNS})
        make_transient_to_detached(snapshot)
        with self._lock:
            if len(self._entries) >= MAX_CLIENTS:
                self._entries.clear()
            self._entries[client.client_id] = (time.monotonic(), snapshot)

    def drop(self, client_ids: set[str] | None) -> None:
        """Forget ``client_ids`` (None: every client), and the CORS origins."""
        with self._lock:
            self._generation += 1
            self._origins = None
            if client_ids is None:
                self._entries.clear()
            else:
                for client_id in client_ids:
                    self._entries.pop(client_id, None)


_COLUMNS = tuple(column.key for column in OAuth2Client.__table__.columns)


def attach(session: Session, snapshot: OAuth2Client) -> OAuth2Client:
    """A persistent copy of ``snapshot`` in ``session``, made without a query (the snapshot itself stays
    detached: merge copies it)."""
    return session.merge(snapshot, load=False)


def drop_everywhere(client_ids: set[str] | None) -> None:
    for cache in list(_CACHES):
        cache.drop(client_ids)


@event.listens_for(Session, "after_flush")
def _clients_flushed(session: Session, flush_context) -> None:
    # A new client is in no cache of clients, but its redirect URIs add CORS origins.
    changed = {
        obj.client_id
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, OAuth2Client) and obj.client_id
    }
    if changed:
        session.info.setdefault(_CHANGED, set()).update(changed)
        drop_everywhere(changed)


@event.listens_for(Session, "do_orm_execute")
def _bulk_change(state) -> None:
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ is OAuth2Client:
        state.session.info[_ALL] = True
        drop_everywhere(None)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    changed, bulk = session.info.pop(_CHANGED, None), session.info.pop(_ALL, None)
    if bulk:
        drop_everywhere(None)
    elif changed:
        drop_everywhere(changed)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction) -> None:
    session.info.pop(_CHANGED, None)
    session.info.pop(_ALL, None)
