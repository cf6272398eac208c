"""Sign-in timing at the production bcrypt cost: ``python -m tests.bench`` (or ``make bench``).

Prints figures and asserts nothing: the time of ``authenticate()`` for an unknown login, a known
login with a wrong password and the right password. The first two should cost the same (one bcrypt
check each, the unknown login against a cached dummy hash), so that response time does not tell
whether a login exists. Runs on an in-memory SQLite database; takes about 10 seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time

from .helpers import settings_of

RUNS = 7


def _app():
    # why: a developer's IDP_CONFIG must not decide the figures, nor must the bench touch instance/.
    os.environ.pop("IDP_CONFIG", None)
    os.environ.setdefault("IDP_INSTANCE_PATH", tempfile.mkdtemp(prefix="idp-bench-"))
    from idp import create_app

    return create_app(
        {
            "server": {"environment": "development", "issuer": "http://localhost"},
            "database": {"url": "sqlite://"},
        }
    )


def _median_seconds(fn, runs: int = RUNS) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def main() -> None:
    from idp.errors import InvalidCredentialsError
    from idp.extensions import db
    from idp.services import accounts
    from idp.services import passwords

    app = _app()
    password = "верный пароль 42"
    with app.app_context():
        db.create_all()
        settings = settings_of(app).passwords
        rounds = settings.bcrypt_rounds
        # A lockout that never triggers: the bench repeats wrong passwords on purpose.
        lockout = dataclasses.replace(settings_of(app).login, max_failures=10**9)
        now = int(time.time())
        account, _ = accounts.create_account(
            db.session,
            login="77-0000001",
            phone="+79161234567",
            surname="Рахимов",
            given_name="Алишер",
            middle_name=None,
            email=None,
            snils=None,
            locale="ru",
            now=now,
            settings=settings,
        )
        account.password_hash = passwords.hash_password(password, rounds)
        account.password_change.state = "done"
        db.session.commit()

        def attempt(login: str, secret: str) -> None:
            with contextlib.suppress(InvalidCredentialsError):
                accounts.authenticate(db.session, login, secret, now=now, settings=settings, lockout=lockout)
            db.session.rollback()

        # Warm-up: the dummy hash is made once per process (one bcrypt hash), not per request.
        attempt("770000099", password)

        cases = [
            ("unknown login", lambda: attempt("770000099", password)),
            ("wrong password", lambda: attempt("770000001", password + "!")),
            ("correct password", lambda: attempt("770000001", password)),
        ]
        print(f"authenticate() at bcrypt rounds {rounds}, {RUNS} runs each (python {sys.version.split()[0]})")
        medians = {}
        for label, fn in cases:
            median, times = _median_seconds(fn)
            medians[label] = median
            spread = f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
            print(f"  {label:<17} median {median * 1000:7.1f} ms   ({spread})")
        ratio = medians["unknown login"] / medians["wrong password"]
        print(f"  ratio unknown / wrong password: {ratio:.3f}")


if __name__ == "__main__":
    main()
