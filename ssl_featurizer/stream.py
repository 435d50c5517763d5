"""Featurize a stream of structures into a parquet dataset: chunked, bounded memory, resumable.

``ssl-featurizer featurize INPUT -o OUT.parquet`` (and :func:`featurize_to_parquet`) reads INPUT with
:func:`ssl_featurizer.readers.iter_records`, featurizes ``chunk_size`` structures at a time with
:class:`~ssl_featurizer.featurizers.structure.SSLStructureFeaturizer` and writes each chunk as one part
file. ``OUT.parquet`` is a folder that pandas and pyarrow read as one table
(``pandas.read_parquet("OUT.parquet")``)::

    OUT.parquet/
        part-00000.parquet ...  one per chunk: columns id, position, then the features
        _manifest.json          settings, input fingerprint, completed parts, resume cursor
        _errors.csv             position, id, reason of every structure that failed or file skipped
        _lock                   exists while a process writes the folder (held with ``flock``)

Only one chunk is in memory at a time, so memory does not grow with the input (measured in
``docs/performance.md``). A part file is written under a hidden temporary name (``.part-*.tmp``,
which pyarrow and pandas ignore), flushed to disk and renamed, and the manifest is replaced
atomically after it; only the parts the manifest lists are data. An interrupted run (Ctrl-C,
SIGKILL, a crash) restarted with the same command removes what the interrupted chunk left (a
temporary file, a part file not yet in the manifest, error rows past the last completed chunk),
checks that every listed part file is whole (redoing from the first one that is not), and continues
after the last completed chunk, with the same result as an uninterrupted run: every input exactly
once. Structures that fail (unreadable files, invalid structures) are not in the parquet; they are
listed in ``_errors.csv`` with the reason, as are files of a folder that are not structure files
(reason ``skipped: …``) and records whose id an earlier record already had (``duplicate id …``: ids are what
rows are joined on, so the table never holds one twice; ``position`` is unique in any case). An output folder
inside the input folder is not read as input. A second process started on an output folder that another process is
writing is refused (:class:`StreamLockedError`) instead of interleaving with it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_featurizer.featurizers import DEFAULT_LAYERS

MANIFEST = "_manifest.json"
ERRORS = "_errors.csv"
LOCK = "_lock"
_FORMAT_VERSION = 2
_ERROR_FIELDS = ("position", "id", "reason")


class StreamError(RuntimeError):
    """The output folder belongs to another run (other input or settings) or is not an output folder."""


class StreamLockedError(StreamError):
    """Another process is writing the output folder."""


@dataclass
class StreamSummary:
    """What a :func:`featurize_to_parquet` call did.

    Attributes:
        out: the output folder.
        n_read: structures read in total (all runs of this output).
        n_ok: rows in the parquet dataset.
        n_failed: records listed in the errors file (failed structures and skipped files).
        n_parts: part files.
        seconds: wall time of this call.
        resumed_from: records already done when this call started (0 for a fresh run).
        n_skipped: of ``n_failed``, files of a folder that are not structure files.
        redone_parts: part files found incomplete or damaged at the start of this call and redone.
    """

    out: Path
    n_read: int
    n_ok: int
    n_failed: int
    n_parts: int
    seconds: float
    resumed_from: int
    n_skipped: int = 0
    redone_parts: int = 0


def _excluded(source: Path, out: Path) -> tuple[Path, ...]:
    """The output folder when it lies inside the input folder (it is not input), else nothing."""
    if source.is_dir() and out.resolve().is_relative_to(source.resolve()):
        return (out,)
    return ()


def _settings(featurizer: Any, source: Path, fmt: str | None, exclude: tuple[Path, ...]) -> dict[str, Any]:
    """What must not change between the runs that fill one output folder."""
    from ssl_featurizer.pooling import parse_pooling
    from ssl_featurizer.readers import source_fingerprint

    model = featurizer.pretrained_model()
    return {"format_version": _FORMAT_VERSION, "source": str(source.resolve()), "fmt": fmt,
            "source_fingerprint": source_fingerprint(source, exclude), "model": model.name,
            "model_fingerprint": model.fingerprint,
            "layers": list(featurizer.layer_indices(model)), "pooling": list(parse_pooling(featurizer.pooling))}


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    with tmp.open("w") as fh:
        fh.write(json.dumps(obj, indent=1) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse an output that is a file or a folder of something else (nothing is changed yet)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise StreamError(f"{out} exists and is a file; choose another output folder")
    if not (out / MANIFEST).exists() and any(p.name != LOCK for p in out.iterdir()):
        hint = "not deleting it" if overwrite else "choose another output"
        raise StreamError(f"{out} is not an ssl-featurizer output folder (not empty, no {MANIFEST}); {hint}")


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the output folder's lock (``out/_lock``; released by the kernel if the process dies).

    Raises:
        StreamLockedError: another process holds it.
    """
    from ssl_featurizer.locking import LockHeldError, exclusive_lock

    out.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(out / LOCK, wait=False, remove=True):
            yield
    except LockHeldError as exc:
        raise StreamLockedError(f"{out} is being written by another process (pid {exc.holder}); wait for it to "
                                "finish (rerun the same command afterwards to resume) or choose another "
                                "output") from None


def _load_manifest(out: Path, settings: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest to continue from (a fresh one if there is nothing to resume); ``out`` is locked."""
    import shutil

    path = out / MANIFEST
    fresh = {**settings, "parts": [], "next_cursor": [0, 0], "n_read": 0, "n_ok": 0, "n_failed": 0,
             "n_skipped": 0, "errors_bytes": 0, "exhausted": False}
    if overwrite:
        for entry in out.iterdir():
            if entry.name != LOCK:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    if not path.exists():
        _write_json_atomic(path, fresh)  # first of all: the folder is known as an output folder from now on
        return fresh
    manifest = json.loads(path.read_text())
    differing = [k for k in settings if manifest.get(k) != settings[k]]
    if differing:
        what = ", ".join(f"{k}: {manifest.get(k)!r} -> {settings[k]!r}" for k in differing)
        raise StreamError(f"{out} holds a run with other settings or input ({what}); use another output or "
                          "overwrite=True")
    return manifest


def _part_is_whole(path: Path, n_rows: int) -> bool:
    """Whether a listed part file is a readable parquet file with the recorded number of rows."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows == n_rows
    except (OSError, ValueError):  # missing, truncated, not parquet (pyarrow raises ArrowInvalid, a ValueError)
        return False


def _repair(out: Path, manifest: dict[str, Any]) -> int:
    """Make the folder hold exactly what the manifest says was completed; return the parts to redo.

    A listed part that is missing or damaged is dropped with every part after it (the cursor goes
    back to its start); files the manifest does not list (temporary files, a part renamed just
    before a crash) are removed; the errors file is cut back to the committed rows.
    """
    parts = manifest["parts"]
    bad = next((k for k, p in enumerate(parts) if not _part_is_whole(out / p["file"], p["n_ok"])), len(parts))
    redone = len(parts) - bad
    if redone:
        first = parts[bad]
        manifest.update(parts=parts[:bad], next_cursor=first["cursor"], n_read=first["first"],
                        n_ok=sum(p["n_ok"] for p in parts[:bad]), n_failed=sum(p["n_failed"] for p in parts[:bad]),
                        n_skipped=sum(p["n_skipped"] for p in parts[:bad]), errors_bytes=first["errors_bytes"],
                        exhausted=False)
        _write_json_atomic(out / MANIFEST, manifest)
    done = {p["file"] for p in manifest["parts"]}
    for entry in out.iterdir():
        if entry.name.startswith((".part-", "part-", "." + MANIFEST)) and entry.name not in done:
            entry.unlink()
    errors = out / ERRORS
    if errors.exists():
        with errors.open("r+b") as fh:
            fh.truncate(manifest["errors_bytes"])
    return redone


def _write_errors(path: Path, rows: Sequence[dict[str, Any]]) -> int:
    """Append rows to the errors file (header first if new); return its size in bytes."""
    import csv

    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_ERROR_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def read_errors(out: str | Path) -> list[dict[str, Any]]:
    """The rows of ``out/_errors.csv`` (position, id, reason) committed by the manifest."""
    import csv
    import io

    out = Path(out)
    size = json.loads((out / MANIFEST).read_text())["errors_bytes"]
    if not (out / ERRORS).exists():
        return []
    with (out / ERRORS).open("rb") as fh:
        text = fh.read(size).decode()
    return [{**r, "position": int(r["position"])} for r in csv.DictReader(io.StringIO(text, newline=""))]


def featurize_to_parquet(source: str | Path, out: str | Path, model: str = "default", layers: str = DEFAULT_LAYERS,
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
        StreamLockedError: another process is writing ``out``.
        FileNotFoundError, ValueError: missing or unsupported ``source``; invalid parameters.
    """
    t0 = time.perf_counter()
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"chunk_size={chunk_size!r}: must be a positive integer")
    if limit is not None and not (isinstance(limit, int) and limit > 0):
        raise ValueError(f"limit={limit!r}: must be a positive integer or None")
    source, out = Path(source), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    _check_output(out, overwrite)
    with _locked(out):  # before the heavy imports: a second writer is refused at once
        from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

        featurizer = SSLStructureFeaturizer(model=model, layers=layers, pooling=pooling, batch_size=batch_size,
                                            n_jobs=n_jobs, ignore_errors=True).fit()
        exclude = _excluded(source, out)
        settings = _settings(featurizer, source, fmt, exclude)
        manifest = _load_manifest(out, settings, overwrite)
        redone = _repair(out, manifest)
        resumed_from = manifest["n_read"]
        _run(featurizer, source, out, manifest, fmt, chunk_size, limit, progress, exclude)
    return StreamSummary(out, manifest["n_read"], manifest["n_ok"], manifest["n_failed"], len(manifest["parts"]),
                         time.perf_counter() - t0, resumed_from, manifest["n_skipped"], redone)


def _seen_ids(out: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """id → position of every record the committed parts and error rows hold (to refuse duplicate ids)."""
    import pyarrow.parquet as pq

    seen: dict[str, int] = {}
    for part in manifest["parts"]:
        table = pq.read_table(out / part["file"], columns=["id", "position"])
        seen.update(zip(table.column("id").to_pylist(), table.column("position").to_pylist()))
    if (out / ERRORS).exists():
        for row in read_errors(out):
            seen.setdefault(row["id"], row["position"])
    return seen


def _run(featurizer: Any, source: Path, out: Path, manifest: dict[str, Any], fmt: str | None, chunk_size: int,
         limit: int | None, progress: bool, exclude: tuple[Path, ...] = ()) -> None:
    """Featurize chunk after chunk from the manifest's cursor, committing each (the body of the locked run)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ssl_featurizer.readers import iter_records

    labels = featurizer.feature_labels()
    resumed_from = manifest["n_read"]

    def todo() -> int:
        """Records still wanted in this call (0: finished)."""
        if manifest["exhausted"]:
            return 0
        return chunk_size if limit is None else min(chunk_size, limit - manifest["n_read"])

    bar = None
    if progress and todo() > 0:
        total = limit if limit is not None else _count_hint(source, fmt, exclude)
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=resumed_from, desc="featurizing", unit="structure", smoothing=0.05,
                   dynamic_ncols=True)

    def advance(n: int) -> None:
        """Move the bar after a batch; the final state is drawn once, by ``close``."""
        if bar.total is not None and bar.n + n >= bar.total:
            bar.n += n
        else:
            bar.update(n)

    records = iter_records(source, fmt, tuple(manifest["next_cursor"]), exclude=exclude)
    seen = _seen_ids(out, manifest)
    schema = pa.schema([("id", pa.string()), ("position", pa.int64())] + [(c, pa.float64()) for c in labels])
    while todo() > 0:
        chunk = [r for _, r in zip(range(todo()), records)]
        if not chunk:
            manifest["exhausted"] = True
            _write_json_atomic(out / MANIFEST, manifest)
            break
        first = manifest["n_read"]
        chunk = [_unique(r, first + k, seen) for k, r in enumerate(chunk)]
        readable = [k for k, r in enumerate(chunk) if r.error is None]
        if bar is not None and len(readable) < len(chunk):
            advance(len(chunk) - len(readable))  # unreadable records are done
        rows, errors = featurizer.featurize_with_errors([chunk[k].structure for k in readable],
                                                        progress=None if bar is None else advance)
        failed = [{"position": first + k, "id": r.id, "reason": r.error} for k, r in enumerate(chunk) if r.error]
        failed += [{"position": first + k, "id": chunk[k].id, "reason": e} for k, e in zip(readable, errors) if e]
        ok = [j for j, e in enumerate(errors) if e is None]
        columns = {"id": pa.array([chunk[readable[j]].id for j in ok], pa.string()),
                   "position": pa.array([first + readable[j] for j in ok], pa.int64())}
        block = rows[ok]
        for c, name in enumerate(labels):
            columns[name] = pa.array(block[:, c], pa.float64())
        name = f"part-{len(manifest['parts']):05d}.parquet"
        tmp = out / f".{name}.tmp"
        with tmp.open("wb") as fh:
            pq.write_table(pa.table(columns, schema=schema), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out / name)
        _fsync_dir(out)
        errors_before = manifest["errors_bytes"]
        manifest["errors_bytes"] = _write_errors(out / ERRORS, sorted(failed, key=lambda r: r["position"]))
        n_skipped = sum(1 for r in chunk if r.skipped)
        manifest["parts"].append({"file": name, "first": first, "cursor": list(manifest["next_cursor"]),
                                  "errors_bytes": errors_before, "n_read": len(chunk), "n_ok": len(ok),
                                  "n_failed": len(failed), "n_skipped": n_skipped})
        manifest["next_cursor"] = list(chunk[-1].next_cursor)
        manifest["n_read"] += len(chunk)
        manifest["n_ok"] += len(ok)
        manifest["n_failed"] += len(failed)
        manifest["n_skipped"] += n_skipped
        _write_json_atomic(out / MANIFEST, manifest)
        if bar is not None:
            bar.n = manifest["n_read"]  # exact, whatever the callbacks counted
            bar.set_postfix(failed=manifest["n_failed"], refresh=False)
        del chunk, rows, block, columns
    if bar is not None:
        bar.close()
    if not (out / ERRORS).exists():
        manifest["errors_bytes"] = _write_errors(out / ERRORS, [])
        _write_json_atomic(out / MANIFEST, manifest)


def _unique(record: Any, position: int, seen: dict[str, int]) -> Any:
    """The record, or (when an earlier record had its id) the record refused with the reason: ids are what rows
    are joined on, so the table never holds one id twice."""
    import dataclasses

    earlier = seen.setdefault(record.id, position)
    if earlier == position or record.error is not None:
        return record
    return dataclasses.replace(record, structure=None, error=f"duplicate id {record.id!r}: the record at position "
                               f"{earlier} has the same id (ids must be unique; this one is not featurized)")


def _count_hint(source: Path, fmt: str | None, exclude: tuple[Path, ...] = ()) -> int | None:
    """Number of records when it is cheap to know (files of a folder, lines of a small JSON-lines file)."""
    from ssl_featurizer.readers import detect_format, list_files

    if source.is_dir():
        return len(list_files(source, unsupported=True, exclude=exclude))
    try:
        kind = fmt or detect_format(source)
    except ValueError:
        return None
    if kind == "jsonl" and source.stat().st_size < 2**30:
        from ssl_featurizer.readers import open_text

        with open_text(source, binary=True) as fh:
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
