"""The offline blocklist (NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS 5.0 6.2.12): passwords from breach
corpora, common Russian and Central Asian words and names, keyboard walks, and repeated or sequential
characters.

The list ships as ``idp/data/blocklist.bin``, built by ``tools/build_blocklist.py`` (the README says from
what, and how to rebuild it). It holds no passwords, only a 40-bit fingerprint of each entry (BLAKE2b),
stored compactly: the first 16 bits choose one of 65,536 buckets and are not stored, each bucket holds its
entries' remaining 24 bits in sorted order, and a table gives each bucket's size. That is 3 bytes an
entry, and a string that is not on the list is taken for one with probability ``entries / 2**40`` (about
6 in 10 million for ours), which then costs its owner one more try at a new password.

A password is looked up in its *normal form* (NFKC, case folded, «ё» as «е», without spaces), and also:

* as typed in the other keyboard layout, both ways («пароль» typed in the Latin layout is "gfhjkm",
  "qwerty" in the Russian one «йцукен»), so every entry also stands for its layout twin;
* without up to ``MAX_DECORATION`` digits, punctuation or symbols at its ends ("Password2024!",
  "!!alisher1990", «Бахтиёр!»): a common word does not become uncommon with a year or a «!» added;
* as its repeated unit ("парольпароль").
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import itertools
import re
from array import array
from collections.abc import Iterable

from . import spelling

MAGIC = b"IDPBL\x00\x01\n"
# BLAKE2b personalisation: a new value invalidates every data file built with the old one.
PERSON = b"idp blocklist v1"
BUCKET_BITS = 16
REMAINDER_BYTES = 3
_HEADER = len(MAGIC) + 8
_BUCKETS = 1 << BUCKET_BITS
# A whole password on the list has at least this many characters in its normal form (the shortest a
# policy may allow, [passwords] min_length); words the list holds for decorated passwords have at least
# MIN_WORD letters.
MIN_PASSWORD = 8
MIN_WORD = 4
# Digits and signs stripped from the ends of a password before its core is looked up.
MAX_DECORATION = 6
# A password made of one unit of up to this many characters repeated ("aaaaaaaa", "abcabcabc",
# "12121212") is refused whatever the unit; a longer unit is refused when it is on the list itself.
MAX_REPEATED_UNIT = 4
_EDGES = re.compile(r"(?P<head>[\d\W_]*)(?P<core>.*?)(?P<tail>[\d\W_]*)", re.DOTALL)


def normal_form(text: str) -> str:
    """The form in which entries are stored and passwords looked up."""
    return "".join(spelling.fold(text).split())


def fingerprint(form: str) -> bytes:
    return hashlib.blake2b(form.encode("utf-8"), digest_size=2 + REMAINDER_BYTES, person=PERSON).digest()


class CompactSet:
    """A read-only set of strings kept as sorted truncated hashes (see the module's docstring)."""

    def __init__(self, data: bytes):
        if data[: len(MAGIC)] != MAGIC or len(data) < _HEADER + _BUCKETS:
            raise ValueError("not a blocklist data file")
        count = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
        if data[len(MAGIC) + 4 : _HEADER] != bytes((BUCKET_BITS, REMAINDER_BYTES, 0, 0)):
            raise ValueError("blocklist data file of another layout")
        base = _HEADER + _BUCKETS
        # Where each bucket's remainders start in ``data`` (kept whole: a slice would copy 2 MB).
        self._starts = array(
            "I",
            (base + REMAINDER_BYTES * size for size in itertools.accumulate(data[_HEADER:base], initial=0)),
        )
        if self._starts[-1] != len(data) or len(data) != base + count * REMAINDER_BYTES:
            raise ValueError("truncated blocklist data file")
        self._data = data
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __contains__(self, form: str) -> bool:
        digest = fingerprint(form)
        bucket = int.from_bytes(digest[:2], "big")
        remainder = digest[2:]
        start, end = self._starts[bucket], self._starts[bucket + 1]
        at = self._data.find(remainder, start, end)
        while at != -1:
            if (at - start) % REMAINDER_BYTES == 0:
                return True
            at = self._data.find(remainder, at + 1, end)
        return False

    @staticmethod
    def serialise(forms: Iterable[str]) -> bytes:
        """The data file for ``forms`` (already in normal form); the same set always gives the same bytes."""
        buckets: list[set[bytes]] = [set() for _ in range(_BUCKETS)]
        for form in forms:
            digest = fingerprint(form)
            buckets[int.from_bytes(digest[:2], "big")].add(digest[2:])
        if max(map(len, buckets)) > 255:
            raise ValueError("a bucket overflows its one-byte size: use more bucket bits")
        count = sum(map(len, buckets))
        header = MAGIC + count.to_bytes(4, "big") + bytes((BUCKET_BITS, REMAINDER_BYTES, 0, 0))
        sizes = bytes(len(bucket) for bucket in buckets)
        return header + sizes + b"".join(b"".join(sorted(bucket)) for bucket in buckets)


@functools.lru_cache(maxsize=1)
def shipped() -> CompactSet:
    """The list that ships with the package, read once per process."""
    return CompactSet((importlib.resources.files("idp") / "data" / "blocklist.bin").read_bytes())


def _period(form: str) -> int:
    """The length of the shortest unit that ``form`` repeats (its own length if none; 0 if empty)."""
    if not form:
        return 0
    at = (form + form).find(form, 1)
    return at if len(form) % at == 0 else len(form)


def _is_sequence(form: str) -> bool:
    """Consecutive characters up or down: "12345678", "abcdefgh", «абвгдежз», "87654321"."""
    steps = {ord(b) - ord(a) for a, b in zip(form, form[1:], strict=False)}
    return steps == {1} or steps == {-1}


def _cores(form: str) -> list[str]:
    """The normal form and, if it has a little decoration at its ends, what is inside it."""
    edges = _EDGES.fullmatch(form)
    if edges is None:  # never: every part of the pattern may be empty
        return [form]
    decoration = len(edges["head"]) + len(edges["tail"])
    if 0 < decoration <= MAX_DECORATION and len(edges["core"]) >= MIN_WORD:
        return [form, edges["core"]]
    return [form]


def candidates(password: str) -> list[str]:
    """The forms of ``password`` looked up in the list, its normal form first."""
    found = []
    for core in _cores(normal_form(password)):
        period = _period(core)
        for form in (core, core[:period]) if period < len(core) else (core,):
            found.append(form)
            found.extend(sorted(spelling.layout_twins(form)))
    return list(dict.fromkeys(found))


def check(password: str, entries: CompactSet | None = None) -> str | None:
    """``"pattern"`` for repeated or sequential characters (with a little decoration or without),
    ``"common"`` for a password on the list in any of its ``candidates``, else None."""
    if any(
        _period(core) <= MAX_REPEATED_UNIT or _is_sequence(core) for core in _cores(normal_form(password))
    ):
        return "pattern"
    entries = shipped() if entries is None else entries
    if any(candidate in entries for candidate in candidates(password)):
        return "common"
    return None
