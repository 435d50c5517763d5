"""Featurize a stream of structures into a parquet dataset: chunked, bounded memory, resumable.

``ssl-featurizer featurize INPUT -o OUT.parquet`` (and :func:`featurize_to_parquet`) reads INPUT with
:func:`ssl_featurizer.readers.iter_records`, featurizes ``chunk_size`` structures at a time with
:class:`~ssl_featurizer.featurizers.structure.SSLStructureFeaturizer` and writes each chunk as one part
file. ``OUT.parquet`` is a folder that pandas and pyarrow read as one table
(``pandas.read_parquet("OUT.parquet")``)::

    OUT.parquet/
        part-00000.parquet ...  one per chunk: columns id, position, then the features
        _manifest.json          settings, input fingerprint, completed parts, resume cursor
        _errors.csv             position, id, reason of every structure that failed

Only one chunk is in memory at a time, so memory does not grow with the input (measured in
``docs/performance.md``). A part file is written to a temporary name and renamed, and the manifest
is replaced atomically after it, so an interrupted run (Ctrl-C, SIGKILL, a crash) restarted with
the same command continues after the last completed chunk, with the same result as an
uninterrupted run. Structures that fail (unreadable files, invalid structures) are not in the
parquet; they are listed in ``_errors.csv`` with the reason.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "_manifest.json"
ERRORS = "_errors.csv"
_FORMAT_VERSION = 1


class StreamError(RuntimeError):
    """The output folder belongs to another run (other input or settings) or is not an output folder."""


@dataclass
class StreamSummary:
    """What a :func:`featurize_to_parquet` call did.

    Attributes:
        out: the output folder.
        n_read: structures read in total (all runs of this output).
        n_ok: rows in the parquet dataset.
        n_failed: structures listed in the errors file.
        n_parts: part files.
        seconds: wall time of this call.
        resumed_from: records already done when this call started (0 for a fresh run).
    """

    out: Path
    n_read: int
    n_ok: int
    n_failed: int
    n_parts: int
    seconds: float
    resumed_from: int


def _settings(featurizer: Any, source: Path, fmt: str | None) -> dict[str, Any]:
    """What must not change between the runs that fill one output folder."""
    from ssl_featurizer.pooling import parse_pooling
    from ssl_featurizer.readers import source_fingerprint

    model = featurizer._model()
    return {"format_version": _FORMAT_VERSION, "source": str(source.resolve()), "fmt": fmt,
            "source_fingerprint": source_fingerprint(source), "model": model.name, "model_sha256": model.sha256,
            "layers": list(featurizer._layers(model)), "pooling": list(parse_pooling(featurizer.pooling))}


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _load_manifest(out: Path, settings: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest to continue from (a fresh one if there is nothing to resume)."""
    import shutil

    path = out / MANIFEST
    fresh = {**settings, "parts": [], "next_cursor": [0, 0], "n_read": 0, "n_ok": 0, "n_failed": 0,
             "exhausted": False}
    if out.exists() and overwrite:
        if out.is_dir() and not path.exists() and any(out.iterdir()):
            raise StreamError(f"{out} is not an ssl-featurizer output folder (no {MANIFEST}); not deleting it")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if not out.exists():
        out.mkdir(parents=True)
        return fresh
    if not out.is_dir():
        raise StreamError(f"{out} exists and is a file; choose another output or pass overwrite")
    if not path.exists():
        if any(out.iterdir()):
            raise StreamError(f"{out} exists, is not empty and has no {MANIFEST}; choose another output")
        return fresh
    manifest = json.loads(path.read_text())
    differing = [k for k in settings if manifest.get(k) != settings[k]]
    if differing:
        what = ", ".join(f"{k}: {manifest.get(k)!r} -> {settings[k]!r}" for k in differing)
        raise StreamError(f"{out} holds a run with other settings or input ({what}); use another output or "
                          "overwrite=True (--overwrite)")
    return manifest


def _clean_incomplete(out: Path, manifest: dict[str, Any]) -> None:
    """Remove part files and error rows written after the last completed chunk (a crash mid-chunk)."""
    done = {p["file"] for p in manifest["parts"]}
    for stray in out.glob("part-*.parquet*"):
        if stray.name not in done:
            stray.unlink()
    errors = out / ERRORS
    if errors.exists():
        with errors.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["position"]) < manifest["n_read"]]
        _write_errors(errors, rows, mode="w")


def _write_errors(path: Path, rows: Sequence[dict[str, Any]], mode: str = "a") -> None:
    new = mode == "w" or not path.exists()
    with path.open(mode, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["position", "id", "reason"])
        if new:
            writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def featurize_to_parquet(source: str | Path, out: str | Path, model: str = "default", layers: str = "01",
                         pooling: str | Sequence[str] = ("mean",), chunk_size: int = 1000, batch_size: int = 64,
                         limit: int | None = None, fmt: str | None = None, n_jobs: int = 1,
                         overwrite: bool = False, progress: bool = True) -> StreamSummary:
    """Featurize every structure of ``source`` into the parquet dataset ``out`` (resuming if possible).

    Args:
        source: a folder of structure files or one file (see :mod:`ssl_featurizer.readers`).
        out: output folder, conventionally named ``*.parquet``.
        model, layers, pooling, batch_size, n_jobs: as for
            :class:`~ssl_featurizer.featurizers.structure.SSLStructureFeaturizer`.
        chunk_size: structures per part file (and the unit of resumption; memory grows with it).
        limit: stop after this many structures in total (counting failed ones); a later call with a
            larger limit (or none) continues the same output.
        fmt: force the format of a single-file source.
        overwrite: delete an existing output folder first instead of resuming it.
        progress: show a progress bar (tqdm) on stderr.

    Returns:
        A :class:`StreamSummary`.

    Raises:
        StreamError: ``out`` belongs to a run with other settings or input, or is not an output folder.
        FileNotFoundError, ValueError: missing or unsupported ``source``; invalid parameters.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer
    from ssl_featurizer.readers import iter_records

    t0 = time.perf_counter()
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"chunk_size={chunk_size!r}: must be a positive integer")
    if limit is not None and not (isinstance(limit, int) and limit > 0):
        raise ValueError(f"limit={limit!r}: must be a positive integer or None")
    source, out = Path(source), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    featurizer = SSLStructureFeaturizer(model=model, layers=layers, pooling=pooling, batch_size=batch_size,
                                        n_jobs=n_jobs, ignore_errors=True).fit()
    labels = featurizer.feature_labels()
    settings = _settings(featurizer, source, fmt)
    manifest = _load_manifest(out, settings, overwrite)
    _clean_incomplete(out, manifest)
    resumed_from = manifest["n_read"]
    def todo() -> int:
        """Records still wanted in this call (0: finished)."""
        if manifest["exhausted"]:
            return 0
        return chunk_size if limit is None else min(chunk_size, limit - manifest["n_read"])

    bar = None
    if progress and todo() > 0:
        total = limit if limit is not None else _count_hint(source, fmt)
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=resumed_from, desc="featurizing", unit="structure", smoothing=0.05)
    records = iter_records(source, fmt, tuple(manifest["next_cursor"]))
    schema = pa.schema([("id", pa.string()), ("position", pa.int64())] + [(c, pa.float64()) for c in labels])
    while todo() > 0:
        chunk = [r for _, r in zip(range(todo()), records)]
        if not chunk:
            manifest["exhausted"] = True
            _write_json_atomic(out / MANIFEST, manifest)
            break
        first = manifest["n_read"]
        readable = [k for k, r in enumerate(chunk) if r.error is None]
        rows, errors = featurizer._featurize_batch([chunk[k].structure for k in readable])
        failed = [{"position": first + k, "id": r.id, "reason": r.error} for k, r in enumerate(chunk) if r.error]
        failed += [{"position": first + k, "id": chunk[k].id, "reason": e} for k, e in zip(readable, errors) if e]
        ok = [j for j, e in enumerate(errors) if e is None]
        columns = {"id": pa.array([chunk[readable[j]].id for j in ok], pa.string()),
                   "position": pa.array([first + readable[j] for j in ok], pa.int64())}
        block = rows[ok]
        for c, name in enumerate(labels):
            columns[name] = pa.array(block[:, c], pa.float64())
        name = f"part-{len(manifest['parts']):05d}.parquet"
        tmp = out / (name + ".tmp")
        pq.write_table(pa.table(columns, schema=schema), tmp)
        os.replace(tmp, out / name)
        if failed:
            _write_errors(out / ERRORS, sorted(failed, key=lambda r: r["position"]))
        unit, index = chunk[-1].cursor
        manifest["parts"].append({"file": name, "first": first, "n_read": len(chunk), "n_ok": len(ok),
                                  "n_failed": len(failed)})
        manifest["next_cursor"] = [unit, index + 1]
        manifest["n_read"] += len(chunk)
        manifest["n_ok"] += len(ok)
        manifest["n_failed"] += len(failed)
        _write_json_atomic(out / MANIFEST, manifest)
        if bar is not None:
            bar.update(len(chunk))
            bar.set_postfix(failed=manifest["n_failed"])
        del chunk, rows, block, columns
    if bar is not None:
        bar.close()
    if not (out / ERRORS).exists():
        _write_errors(out / ERRORS, [], mode="w")
    return StreamSummary(out, manifest["n_read"], manifest["n_ok"], manifest["n_failed"], len(manifest["parts"]),
                         time.perf_counter() - t0, resumed_from)


def _count_hint(source: Path, fmt: str | None) -> int | None:
    """Number of records when it is cheap to know (files of a folder, lines of a small JSON-lines file)."""
    from ssl_featurizer.readers import detect_format, list_files

    if source.is_dir():
        return len(list_files(source))
    try:
        kind = fmt or detect_format(source)
    except ValueError:
        return None
    if kind == "jsonl" and source.stat().st_size < 2**30:
        from ssl_featurizer.readers import _open_text

        with _open_text(source) as fh:
            return sum(1 for _ in fh)
    return None


def read_parquet(out: str | Path) -> Any:
    """The featurized table as a pandas DataFrame indexed by ``id`` (parts in input order)."""
    import pandas as pd

    out = Path(out)
    manifest = json.loads((out / MANIFEST).read_text())
    frames = [pd.read_parquet(out / p["file"]) for p in manifest["parts"]]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).set_index("id")
