"""The password policy's cost and the blocklist's false-positive rate:
``python -m tests.bench_password_policy``.

Prints figures and asserts nothing:

* loading: importing the policy modules and reading idp/data/blocklist.bin (time, memory), in a fresh
  interpreter so that nothing is cached;
* the false-positive rate: random strings (held out: none of them is in any source) looked up one by one
  and through the whole blocklist check, against the expected ``entries / 2**40`` per lookup;
* the cost per password of a lookup, of the blocklist check, of the context-word check (with the names'
  spellings cached, as after a first change, and not), and of ``password_policy.check`` as the password
  change calls it. The bcrypt hash that follows every change costs far more (see ``make bench``).

Takes about a minute on the 2-core machine.
"""

from __future__ import annotations

import random
import statistics
import string
import subprocess
import sys
import time

RANDOM_LOOKUPS = 1_000_000
RANDOM_CHECKS = 100_000
RUNS = 5
# The production default of [passwords] bcrypt_rounds.
BCRYPT_ROUNDS = 12

_MODULES = (
    "idp.services.spelling",
    "idp.services.context_words",
    "idp.services.blocklist",
    "idp.services.password_policy",
)
_LOAD = """
import importlib.resources, time, tracemalloc
from idp.services import blocklist
started = time.perf_counter()
entries = blocklist.shipped()
loaded = time.perf_counter()
data = (importlib.resources.files("idp") / "data" / "blocklist.bin").read_bytes()
tracemalloc.start()
again = blocklist.CompactSet(data)
current, peak = tracemalloc.get_traced_memory()
print(loaded - started, len(data) + current, len(data) + peak)
"""


def _import_seconds() -> float:
    """The policy modules' own import time (``-X importtime``), in a fresh interpreter."""
    report = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import idp.services.password_policy"],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    own = [line.split("|") for line in report.splitlines() if line.rsplit("|", 1)[-1].strip() in _MODULES]
    return sum(int(fields[0].split(":")[1]) for fields in own) / 1e6


SAMPLES = [
    "correct horse battery staple",
    "жёлтый трамвай едет мимо чайханы",
    "Kx7#pQ2v!m",
    "Каримов1990",
    "Бахтиёр!",
    "Иванов12",
    "password1",
    "gfhjkm2024!",
    "qwertyuiop",
    "moskva-patent-2024",
    "Самарканд весной 2024 и абрикосы",
    "zaq12wsx",
    "aaaaaaaaaa",
    "toshkent2024",
    "ljubov1990",
]


def _per_call(fn, items, runs: int = RUNS) -> float:
    """Median over ``runs`` of the mean seconds per item."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for item in items:
            fn(item)
        times.append((time.perf_counter() - started) / len(items))
    return statistics.median(times)


def _random_strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "абвгдеёжзийклмнопрстуфхцчшщъыьэюя!@#$%"
    return ["".join(rng.choices(alphabet, k=rng.randint(10, 16))) for _ in range(count)]


def main() -> None:
    from idp.services import blocklist
    from idp.services import context_words
    from idp.services import password_policy
    from idp.services import passwords

    loaded, held, peak = subprocess.run(
        [sys.executable, "-c", _LOAD], check=True, capture_output=True, text=True
    ).stdout.split()
    print(
        "import of the policy modules (their own code, idp's dependencies aside): "
        f"{_import_seconds() * 1000:.1f} ms"
    )
    print(
        f"reading the blocklist on first use: {float(loaded) * 1000:.1f} ms; {int(held):,} bytes held "
        f"(peak {int(peak):,})"
    )

    entries = blocklist.shipped()
    expected = len(entries) / 2**40
    randoms = _random_strings(RANDOM_LOOKUPS, seed=1)
    forms = [blocklist.normal_form(text) for text in randoms]
    hits = sum(form in entries for form in forms)
    print(
        f"entries: {len(entries):,}; false positives per lookup: {hits} in {len(forms):,} random strings "
        f"(expected {expected:.2e} each, {expected * len(forms):.2f} in all)"
    )
    checks = randoms[:RANDOM_CHECKS]
    refused = [text for text in checks if blocklist.check(text) is not None]
    lookups = sum(len(blocklist.candidates(text)) for text in checks) / len(checks)
    print(
        f"false positives per password: {len(refused)} in {len(checks):,} random passwords through the whole "
        f"check ({lookups:.2f} lookups each; expected {expected * lookups * len(checks):.2f})"
        + (f": {refused[:5]}" if refused else "")
    )

    context = password_policy.PolicyContext(
        login="770000001", names=("Каримов", "Алишер", "Бахтиёрович"), phone="+79161234567"
    )
    print(f"one lookup: {_per_call(entries.__contains__, forms[:100_000]) * 1e6:.2f} µs")
    print(f"blocklist.check: {_per_call(blocklist.check, SAMPLES * 200) * 1e6:.1f} µs per password")
    print(
        f"context_words.find, names cached: "
        f"{_per_call(lambda p: context_words.find(p, context), SAMPLES * 200) * 1e6:.1f} µs per password"
    )

    def cold(password: str) -> None:
        context_words._word_skeletons.cache_clear()
        context_words.find(password, context)

    print(f"context_words.find, names not cached: {_per_call(cold, SAMPLES * 20) * 1e6:.1f} µs per password")
    total = _per_call(lambda p: password_policy.check(p, context), SAMPLES * 200)
    print(f"password_policy.check: {total * 1e6:.1f} µs per password")
    bcrypt = _per_call(lambda p: passwords.hash_password(p, BCRYPT_ROUNDS), SAMPLES[:3], runs=3)
    print(
        f"for scale, the bcrypt hash every change then makes (cost {BCRYPT_ROUNDS}): {bcrypt * 1000:.0f} ms, "
        f"{bcrypt / total:,.0f} times the policy check"
    )


if __name__ == "__main__":
    main()
