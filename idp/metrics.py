"""What the provider counts, for Prometheus (prometheus-client), and the text a scrape of /metrics gets.

``create_app`` builds one ``Metrics`` per app (``runtime.current().metrics``); views, the protocol
wiring and background jobs call its methods with an outcome (``signed_in("ok")``), never touch
prometheus-client themselves. The names and the outcomes each counter knows are declared here, once, and
every known outcome is exported from the start at 0, so a rate over an outcome that has not happened yet
is 0, not "no data".

Several processes (``idp serve --production``: granian workers): each worker writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR``, which ``idp.serving`` prepares before the workers start
(``prepare_multiprocess``); each new worker forgets the live values of those that are gone
(``forget_dead_processes``, ``process_exited``); a scrape, answered by
whichever worker gets it, adds up the files of all of them (prometheus-client's MultiProcessCollector).
Without that variable (the development server, tests) the values live in the process, in a registry of
the app's own, so two apps in one process never count into each other.

What describes the database rather than what a process did — deliveries still pending in the back-channel
outbox, the age of its oldest row — is not counted by any process: it is read at scrape time by the
functions given to ``read_at_scrape`` (their gauges are listed in ``SCRAPE_GAUGES``).

May import: prometheus-client and the standard library.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# why: the `_created` twin of every series (a start timestamp per label set) doubles the scrape for no
# use here, and the multi-process collector has none anyway: both modes expose the same series.
disable_created_metrics()

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Counter name (without _total) -> (help, label, the values that label takes).
OUTCOMES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # ok: signed in with the account's own password; temporary: with a temporary one (an operator's or
    # an SMS reset's), which must be changed at once; locked: refused because the account is locked
    # (or this failure locked it); wrong: every other refusal (unknown login, wrong password, blocked);
    # wait: refused unchecked, the address must wait; captcha: refused unchecked, the captcha was owed
    # and not solved ([login], services.signin_throttle).
    "idp_sign_ins": (
        "Migrants' sign-in attempts by outcome",
        "outcome",
        ("ok", "temporary", "wrong", "locked", "wait", "captcha"),
    ),
    # sent: a reset was queued for a matching account (the outbox texts it unless the phone's limit or
    # the budget is spent by then); ignored: nothing matched (a decoy, the same page and writes);
    # limited: a daily limit refused it; failed: the SMS gateway did not take it (nothing changed).
    "idp_password_resets": (
        "Password reset requests by SMS by outcome",
        "outcome",
        ("sent", "ignored", "limited", "failed"),
    ),
    # started: a recovery was queued (an e-mail link, an SMS code, or a decoy that sends nothing: the outbox
    # decides); limited; failed: the outbox's message was refused (by the gateway or the mail server);
    # code_ok / code_wrong: an SMS code typed; completed: a new password set.
    "idp_recoveries": (
        "Access recovery steps by outcome",
        "outcome",
        ("started", "limited", "failed", "code_ok", "code_wrong", "completed"),
    ),
    "idp_sms": ("SMS handed to the gateway (sent) or refused by it (failed)", "outcome", ("sent", "failed")),
    "idp_emails": (
        "E-mails handed to the mail server (sent) or refused (failed)",
        "outcome",
        ("sent", "failed"),
    ),
    "idp_tokens_issued": (
        "Token responses by grant type",
        "grant",
        ("authorization_code", "refresh_token", "client_credentials", "device_code"),
    ),
    "idp_backchannel_logout_deliveries": (
        "Back-channel logout tokens delivered to relying parties, or given up on",
        "outcome",
        ("delivered", "failed"),
    ),
    # in_flight: a page request refused at once because its client address had [limits] pages_in_flight
    # page requests in flight in the worker already; rate: one over its [limits] pages_per_second
    # (idp.admission).
    "idp_admission_refusals": (
        "Page requests refused before the app, by reason",
        "reason",
        ("in_flight", "rate"),
    ),
}
# Gauges read from the database at scrape time: name -> help.
SCRAPE_GAUGES = {
    "idp_backchannel_logout_pending": "Back-channel logout deliveries waiting in the outbox",
    "idp_backchannel_logout_oldest_age_seconds": "Age of the oldest pending back-channel logout delivery",
}
# CPU seconds of one sign-in's bcrypt check: ~0.25 s at the production cost of 12 on a current core,
# doubling with each step of [passwords] bcrypt_rounds.
PASSWORD_CHECK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
# Request latency buckets, seconds: a page or token answer is ~10 ms, a sign-in ~0.3 s of bcrypt, the
# reset and recovery forms answer at once (their messages leave from the outbox).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

ScrapeReader = Callable[[], dict[str, float]]


def multiprocess_dir() -> str | None:
    return os.environ.get(ENVIRONMENT) or None


class Metrics:
    """The counters of one app. Every method takes the outcome as one of the declared values."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._readers: list[ScrapeReader] = []
        self.requests = Counter(
            "idp_http_requests",
            "HTTP requests answered, by endpoint (the Flask endpoint, 'none' if no route matched), "
            "method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "idp_http_request_duration_seconds",
            "Time from the request reaching the app to its answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.password_checks = Histogram(
            "idp_password_check_cpu_seconds",
            "CPU time of each sign-in's bcrypt check (migrants and staff), in the thread that ran it: what "
            "[passwords] bcrypt_rounds costs on this machine",
            buckets=PASSWORD_CHECK_BUCKETS,
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple] = {}
        self._outcomes: dict[str, Counter] = {}
        for name, (doc, label, known) in OUTCOMES.items():
            counter = Counter(name, doc, [label], registry=self.registry)
            for value in known:
                counter.labels(value)
            self._outcomes[name] = counter
        if multiprocess_dir() is None:
            self.registry.register(_ScrapeCollector(self._readers))

    # -- what views and jobs call -------------------------------------------------------------------

    def request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        # The labelled children, looked up once per combination: labels() validates and locks on every
        # call, and this runs on every request (issue 12). Endpoints, methods and statuses are few.
        key = (endpoint, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(endpoint, method, str(status)), self.latency.labels(endpoint))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count(self, name: str, outcome: str) -> None:
        """One more ``outcome`` of counter ``name`` (a key of ``OUTCOMES``); an undeclared value is a bug."""
        _, _, known = OUTCOMES[name]
        if outcome not in known:
            raise ValueError(f"{name}: unknown outcome {outcome!r}")
        self._outcomes[name].labels(outcome).inc()

    def password_checked(self, cpu_seconds: float) -> None:
        self.password_checks.observe(cpu_seconds)

    def signed_in(self, outcome: str) -> None:
        self.count("idp_sign_ins", outcome)

    def password_reset(self, outcome: str) -> None:
        self.count("idp_password_resets", outcome)

    def recovery(self, outcome: str) -> None:
        self.count("idp_recoveries", outcome)

    def recovery_delivery(self, status: str) -> None:
        """The outbox's end of a recovery message: only a refusal ("failed") is a recovery outcome."""
        if status == "failed":
            self.recovery("failed")

    def sms(self, outcome: str) -> None:
        self.count("idp_sms", outcome)

    def email(self, outcome: str) -> None:
        self.count("idp_emails", outcome)

    def token_issued(self, grant: str) -> None:
        # The device grant's type is a URN (RFC 8628 §3.4); its last part names it.
        self.count("idp_tokens_issued", grant.rsplit(":", 1)[-1])

    def backchannel_delivery(self, outcome: str) -> None:
        self.count("idp_backchannel_logout_deliveries", outcome)

    def admission_refused(self, reason: str) -> None:
        self.count("idp_admission_refusals", reason)

    def read_at_scrape(self, reader: ScrapeReader) -> None:
        """``reader()`` runs at each scrape, in the scraping request's app context, and returns values
        of ``SCRAPE_GAUGES`` by name (the outbox gives its pending count and oldest age)."""
        self._readers.append(reader)

    # -- the scrape ----------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text of /metrics: every process's counters, and the gauges read now."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        registry.register(_WorkerFilesCollector(multiprocess_dir()))
        registry.register(_ScrapeCollector(self._readers))
        return generate_latest(registry)


class Counted:
    """An SMS sender or mailer (anything with ``send``) whose every send counts as ``sent``, or as
    ``failed`` when it raises (and the error goes on to the caller unchanged)."""

    def __init__(self, inner, count: Callable[[str], None]) -> None:
        self.inner = inner
        self._count = count

    def send(self, *args, **kwargs) -> None:
        try:
            self.inner.send(*args, **kwargs)
        except Exception:
            self._count("failed")
            raise
        self._count("sent")


class _WorkerFilesCollector(multiprocess.MultiProcessCollector):
    """prometheus-client's sum over the workers' files, without the files still being created.

    A worker starting (granian replaces one that died) creates its file empty and then sizes it; a scrape
    in between failed on it (``struct.error``) and /metrics answered 500. An empty file holds no value
    yet, so leaving it out changes no sum."""

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self):
        files = [path for path in glob.glob(os.path.join(self._path, "*.db")) if os.path.getsize(path) > 0]
        return self.merge(files, accumulate=True)


class _ScrapeCollector(Collector):
    def __init__(self, readers: list[ScrapeReader]) -> None:
        self.readers = readers

    def collect(self) -> Iterable[GaugeMetricFamily]:
        found: dict[str, float] = {}
        for reader in self.readers:
            found.update(reader())
        for name, doc in SCRAPE_GAUGES.items():
            if name in found:
                yield GaugeMetricFamily(name, doc, value=found[name])


# -- several processes (idp.serving) ------------------------------------------------------------------


def prepare_multiprocess(directory: str) -> None:
    """Make ``directory`` the place where this process and the workers it forks write their values,
    emptied of files that earlier processes left (a restart starts every counter at 0, as Prometheus
    expects of a restarted target). Called by the server's main process before it forks its workers."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for leftover in glob.glob(os.path.join(directory, "*.db")):
        os.remove(leftover)
    os.environ[ENVIRONMENT] = directory
    # why: prometheus-client picks the class that stores values when it is first imported, and the
    # `idp` command has imported it (building its app) before it knows it will serve several processes.
    # Metrics are created in each worker's create_app, after the fork, and take the class from here.
    values.ValueClass = values.get_value_class()


def process_exited(pid: int) -> None:
    """A worker has exited: its live gauges no longer count (its counters stay in the sum)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def forget_dead_processes() -> list[int]:
    """``process_exited`` for every process that left values in the folder and no longer runs; returns
    their ids. Each worker calls it as it starts: the server (granian) starts a new worker for one that
    died but tells nobody which one died."""
    directory = multiprocess_dir()
    if directory is None:
        return []
    gone = []
    for pid in sorted(_pids_with_files(directory)):
        if pid != os.getpid() and not _running(pid):
            process_exited(pid)
            gone.append(pid)
    return gone


def _pids_with_files(directory: str) -> set[int]:
    # prometheus-client names each file <kind>_<pid>.db (counter_12345.db, gauge_livesum_12345.db).
    pids = set()
    for path in glob.glob(os.path.join(directory, "*.db")):
        tail = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[-1]
        if tail.isdigit():
            pids.add(int(tail))
    return pids


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
