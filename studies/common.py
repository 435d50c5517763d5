"""What the benchmark scripts share besides the docs blocks (:mod:`docs_blocks`): their command line's common
options, resumable result files and the corpus's structures read by the library's reader."""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project_tasks import corpus_file

if TYPE_CHECKING:
    import pandas as pd

STUDIES = Path(__file__).resolve().parent


def script_parser(doc: str | None, *, cache_dir: bool = False, tasks: str | None = None, seeds: bool = False,
                  corpus: bool = False) -> argparse.ArgumentParser:
    """The command line of a study script: ``doc`` (its module docstring) as the description, shown as written,
    and the options that several scripts share, each where asked for:

    - ``cache_dir``: ``--cache-dir``, the descriptor cache (default ``studies/cache``);
    - ``tasks``: ``--tasks``, comma-separated task names, defaulting to ``tasks``;
    - ``seeds``: ``--seeds``, random 80/20 splits of a task without official folds (default 3);
    - ``corpus``: ``--data``, the corpus file (default :func:`project_tasks.corpus_file`).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if tasks is not None:
        parser.add_argument("--tasks", default=tasks, help="comma-separated task names (default: %(default)s)")
    if seeds:
        parser.add_argument("--seeds", type=int, default=3,
                            help="random 80/20 splits where a task has no official folds (default: %(default)s)")
    if cache_dir:
        parser.add_argument("--cache-dir", default=str(STUDIES / "cache"), help="descriptor cache")
    if corpus:
        parser.add_argument("--data", default=str(corpus_file()),
                            help="corpus, JSON lines, gzipped or not (default: %(default)s)")
    return parser


class ResultRows:
    """The rows of a results CSV that a script extends step by step and resumes from.

    The file is read once (when it exists); :meth:`add` appends rows and rewrites the whole file, so a run that
    stops keeps every step it finished and the next run skips them (:meth:`done`).
    """

    def __init__(self, path: str | Path) -> None:
        import pandas as pd

        self.path = Path(path)
        self.rows: list[dict[str, Any]] = pd.read_csv(self.path).to_dict("records") if self.path.exists() else []

    def done(self, *columns: str) -> set[tuple]:
        """The ``columns`` values of every stored row (the keys of the finished steps)."""
        return {tuple(row[c] for c in columns) for row in self.rows}

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append ``rows`` and write the file."""
        self.rows.extend(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(self.path, index=False)

    def frame(self) -> pd.DataFrame:
        """Every row as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)


def corpus_rows(path: str | Path, every: int = 1) -> Iterator[dict[str, Any]]:
    """The JSON objects of a corpus file (JSON lines, gzipped or not), of every ``every``-th line from the first;
    not yet structures (:func:`corpus_structure` turns the rows a script keeps into structures)."""
    from ssl_featurizer.readers import open_text

    with open_text(path) as handle:
        for line in itertools.islice(handle, 0, None, every):
            yield json.loads(line)


def corpus_structure(row: dict[str, Any]) -> Any:
    """A corpus row (``{"id", "lattice", "species", "frac"}``) as a pymatgen ``Structure``, read by
    :func:`ssl_featurizer.readers.structure_from_object`; a row it cannot read raises ``ValueError`` naming it."""
    from ssl_featurizer.readers import structure_from_object

    structure, error = structure_from_object(row)
    if structure is None:
        raise ValueError(f"corpus row {row.get('id', '?')}: {error}")
    return structure
