"""Read structure corpora in the JSON-lines format of ``../shared/data/mp2025/structures.jsonl.gz``."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymatgen.core import Structure


def iter_corpus(path: str | Path, limit: int | None = None) -> Iterator[tuple[str, Structure]]:
    """Stream ``(id, Structure)`` pairs from a (gzipped) JSON-lines file.

    Each line holds ``{"id", "lattice", "species", "frac"}`` (lattice rows in Å, fractional coordinates).
    """
    from pymatgen.core import Structure

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                return
            row = json.loads(line)
            yield row["id"], Structure(row["lattice"], row["species"], row["frac"])
