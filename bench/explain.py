"""The SQL that idp's hot paths send, and PostgreSQL's plan for each statement.

Not a script: ``bench.load`` calls ``capture_and_explain`` after the load runs, on the same database.
How: an app built from the same production configuration serves each workload's request in-process
(Flask's test client, through the real views, authlib and SQLAlchemy), while a SQLAlchemy
``before_cursor_execute`` listener records every statement with its parameters. Each recorded
SELECT, UPDATE and DELETE is then run again as ``EXPLAIN (ANALYZE, BUFFERS)`` with the same
parameters in a transaction that is rolled back. INSERTs are listed but not re-run (a second insert
of the same digest would only hit the unique constraint). A plan is flagged when it reads a table
sequentially that holds at least ``BIG_TABLE`` rows, or when an index scan still throws away at least
``BIG_FILTER`` rows with a filter: both mean no index covers the predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode
from urllib.parse import urlsplit

from sqlalchemy import event
from sqlalchemy import text

from . import codeflow

BIG_TABLE = 10_000
BIG_FILTER = 1_000
_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")


class _Response:
    """Just enough of requests.Response for ``codeflow.run``."""

    def __init__(self, response, url: str):
        self.status_code = response.status_code
        self.headers = response.headers
        self.url = url
        self.text = response.get_data(as_text=True)
        self._response = response
        # Closed as a server closes it (PEP 3333): idp.admission counts a page in flight until then, and
        # answers a fourth one from the same address with 429.
        response.close()

    def json(self):
        return self._response.get_json()


class TestClientSession:
    """A requests-like session over Flask's test client, so ``codeflow.run`` can drive the app in-process."""

    def __init__(self, app, origin: str):
        self.client = app.test_client()
        self.origin = origin

    def _path(self, url: str, params: dict | None) -> str:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if params:
            path += ("&" if parts.query else "?") + urlencode(params)
        return path

    def get(self, url, params=None, allow_redirects=False, timeout=None):
        path = self._path(url, params)
        return _Response(self.client.get(path, base_url=self.origin), self.origin + path)

    def post(self, url, data=None, auth=None, allow_redirects=False, timeout=None):
        path = self._path(url, None)
        kwargs = {"data": data, "base_url": self.origin}
        if auth is not None:
            kwargs["auth"] = auth
        return _Response(self.client.post(path, **kwargs), self.origin + path)

    def close(self):
        pass


def _record(engine) -> tuple[list, Callable[[], None]]:
    seen: list[tuple[str, object]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    return seen, lambda: event.remove(engine, "before_cursor_execute", listener)


def _table_rows(conn) -> dict[str, int]:
    rows = conn.execute(text("SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r'"))
    return {row[0]: row[1] for row in rows}


def _findings(plan: str, table_rows: dict[str, int]) -> list[str]:
    found = []
    for table in _SEQ_SCAN.findall(plan):
        if table_rows.get(table, 0) >= BIG_TABLE:
            found.append(f"sequential scan of {table} ({table_rows[table]:,} rows)")
    for removed in _REMOVED.findall(plan):
        if int(removed) >= BIG_FILTER:
            found.append(f"{int(removed):,} rows read and thrown away by a filter")
    return found


_ACCESS = re.compile(
    r"((?:Parallel )?(?:Seq|Index|Index Only|Bitmap Heap|Bitmap Index) Scan(?: using \w+)? on \w+)"
)
_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
_TABLE = re.compile(r"\b(?:FROM|UPDATE|INTO|JOIN)\s+(\w+)", re.IGNORECASE)


def access_paths(plan: str | None) -> list[str]:
    """How each table was reached, e.g. "Index Scan using ix_tokens_sid on tokens"."""
    return list(dict.fromkeys(_ACCESS.findall(plan or "")))


_BUFFERS = re.compile(r"Buffers: shared((?: \w+=\d+)+)")


def buffers(plan: str | None) -> dict[str, int]:
    """The whole statement's shared buffers (the top node's line: it counts its children's), e.g.
    {"hit": 7, "read": 2}: a read is a page that was not in shared_buffers (the OS cache or the disk)."""
    match = _BUFFERS.search(plan or "")
    if not match:
        return {}
    return {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}


def execution_ms(plan: str | None) -> float | None:
    match = _EXECUTION.search(plan or "")
    return float(match.group(1)) if match else None


def tables(statement: str) -> list[str]:
    return list(dict.fromkeys(_TABLE.findall(statement)))


def _explain(engine, statement: str, parameters, table_rows) -> dict:
    verb = statement.lstrip().split(None, 1)[0].upper()
    item = {"statement": " ".join(statement.split()), "verb": verb}
    if verb not in ("SELECT", "UPDATE", "DELETE", "WITH"):
        item["plan"] = None
        item["findings"] = []
        return item
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        raw.rollback()
    finally:
        raw.close()
    item["plan"] = plan
    item["findings"] = _findings(plan, table_rows)
    return item


def capture_and_explain(
    app, origin: str, workloads: dict[str, Callable[[TestClientSession], None] | tuple]
) -> dict:
    """For each named workload: the statements one run of it sends, each with its plan and findings.
    A workload is an action, or a pair (setup, action) whose setup runs first, on the same session,
    unrecorded (e.g. a sign-in before the page that needs one)."""
    from idp.extensions import db

    out = {}
    with app.app_context():
        engine = db.engine
        with engine.connect() as conn:
            table_rows = _table_rows(conn)
    for name, action in workloads.items():
        session = TestClientSession(app, origin)
        if isinstance(action, tuple):
            setup, action = action
            setup(session)
        with app.app_context():
            engine = db.engine
        seen, stop = _record(engine)
        try:
            action(session)
        finally:
            stop()
        statements = []
        for statement, parameters in seen:
            statements.append(_explain(engine, statement, parameters, table_rows))
        out[name] = {"statement_count": len(seen), "statements": statements}
    return out


def code_flow(provider: codeflow.Provider, login: str, password: str):
    """A workload for ``capture_and_explain``: one whole code flow, sign-in included."""

    def action(session: TestClientSession):
        codeflow.run(provider, login, password, session=session)

    return action
