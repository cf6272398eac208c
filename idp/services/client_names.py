"""Names of admin-registered clients are reserved: a client that registers itself (RFC 7591) or
renames itself (RFC 7592) may not call itself «Личный кабинет иностранного гражданина» when an admin
registered a client of that name, nor anything that only looks the same.

Two names are "the same" when their skeletons are equal (after Unicode TR #39's idea of a skeleton, cut
down to what matters here): compatibility-decomposed (NFKD: full-width and styled letters become plain
ones), without combining marks (ё is е, й is и), case-folded, with Latin, Greek and digit look-alikes
of Cyrillic letters replaced by those letters (Latin a/o/c/e/p/x and the like), and with everything
but letters and digits dropped (spaces, punctuation, quotes, invisible characters).
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import OAuth2Client

# Characters that look like a Cyrillic letter (in lower or upper case), mapped to that letter.
_LOOKALIKES = str.maketrans(
    {
        # Latin
        "a": "а",
        "b": "в",
        "c": "с",
        "e": "е",
        "h": "н",
        "k": "к",
        "m": "м",
        "o": "о",
        "p": "р",
        "t": "т",
        "x": "х",
        "y": "у",
        "u": "и",
        "n": "п",
        "r": "г",
        # Greek
        "α": "а",
        "β": "в",
        "γ": "у",
        "ε": "е",
        "η": "н",
        "κ": "к",
        "μ": "м",
        "ν": "v",
        "ο": "о",
        "π": "п",
        "ρ": "р",
        "τ": "т",
        "υ": "у",
        "χ": "х",
        "ϲ": "с",
        # Cyrillic letters of other languages that look like Latin ones
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "һ": "н",
        "ԛ": "q",
        "ԝ": "w",
        # digits
        "0": "о",
        "3": "з",
        "6": "б",
    }
)


def skeleton(name: str) -> str:
    """What a name looks like, for comparison only (never shown or stored)."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = unicodedata.normalize("NFKC", bare).casefold().translate(_LOOKALIKES)
    return "".join(ch for ch in folded if ch.isalnum())


def reserved_by_admin(db: Session, name: str, *, except_client_id: str | None = None) -> bool:
    """True when ``name`` looks like the name of a client an admin registered."""
    wanted = skeleton(name)
    query = select(OAuth2Client).filter_by(dynamically_registered=False)
    return any(
        skeleton(client.client_name) == wanted
        for client in db.scalars(query)
        if client.client_id != except_client_id
    )
