"""The development outbox shared by the SMS and e-mail file backends: one JSON object per line."""

from __future__ import annotations

import datetime
import fcntl
import json
import os


def append(path: str, record: dict) -> None:
    """Append ``record`` with a ``sent_at`` timestamp. Raises OSError when the file cannot be written.

    An exclusive lock keeps each line whole when several workers write to one file."""
    line = json.dumps(
        {**record, "sent_at": datetime.datetime.now(datetime.UTC).isoformat()}, ensure_ascii=False
    )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as outbox:
        fcntl.flock(outbox, fcntl.LOCK_EX)
        outbox.write(line + "\n")
