"""Generated blocks of the docs pages: the text between ``<!-- name:start -->`` and ``<!-- name:end -->``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def _split(text: str, name: str, page: Path | str) -> tuple[str, str, str]:
    """``(before, body, after)`` around the block ``name``; SystemExit if either marker is missing."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, found, rest = text.partition(start)
    body, closed, tail = rest.partition(end)
    if not (found and closed):
        raise SystemExit(f"block {name!r} ({start} … {end}) missing from {page}")
    return head + start, body, end + tail


def replace_block(text: str, name: str, body: str, page: Path | str = "the page") -> str:
    """``text`` with the block ``name`` replaced by ``body``; SystemExit if its markers are missing."""
    head, _, tail = _split(text, name, page)
    return f"{head}\n{body.rstrip()}\n{tail}"


def read_block(page: Path, name: str) -> str:
    """The body of the block ``name`` of the file ``page``; SystemExit if its markers are missing."""
    return _split(page.read_text(), name, page)[1].strip()


def write_block(page: Path, name: str, body: str) -> None:
    """Replace the block ``name`` of the file ``page`` by ``body``."""
    page.write_text(replace_block(page.read_text(), name, body, page))


def picks(choices: Iterable[str]) -> str:
    """How often each choice was made, most frequent first: ``"ssl:012×2, ssl:01×1"``."""
    from collections import Counter

    return ", ".join(f"{k}×{v}" for k, v in Counter(choices).most_common())
