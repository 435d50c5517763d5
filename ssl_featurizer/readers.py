"""Stream structures from files: CIF/POSCAR folders, JSON(L), extxyz — lazily, resumably, failures kept.

:func:`iter_records` yields one :class:`Record` per structure found in a source, in a fixed order,
parsing each only when it is reached. A structure that cannot be read becomes a record with an
``error`` (never an exception), so a bad file does not stop a long run.

Supported sources (the format is chosen from the name unless ``fmt`` is given):

============================  ====================================================================
``folder/``                   every file below it (recursively, sorted by relative path; hidden
                              entries are ignored; a file of no supported type becomes a *skipped*
                              record, so it is reported rather than silently left out)
``*.cif``, ``*.mcif``          CIF, every data block (``CifParser``, cell as given)
``POSCAR*``, ``CONTCAR*``,     VASP structure files
``*.vasp``, ``*.poscar``
``*.jsonl``, ``*.jsonl.gz``,   one JSON object per line: ``Structure.as_dict()``, or the corpus format
``*.ndjson``                  ``{"id", "lattice", "species", "frac"}`` (the pretraining corpus format)
``*.json``, ``*.json.gz``      one ``Structure.as_dict()``, a list of them, or a matminer DataFrame
                              (``orient="split"``) with a ``structure`` column (read at once)
``*.xyz``, ``*.extxyz``        extended XYZ frames with a cell, via ASE (``pip install ase``)
============================  ====================================================================

Every record has a *cursor* ``(unit, index)``: the unit is a file of a folder or a line of a
JSON-lines file; the index counts structures inside the unit. ``iter_records(source, start=cursor)``
continues exactly there without parsing what comes before (JSON-lines lines are skipped unread,
folder files are not opened), which is what makes :mod:`ssl_featurizer.stream` resumable.

Malformed input never raises and never hangs: every reason names the format and what was wrong
(``could not parse CIF: …``, ``could not parse JSON-lines line 7: not UTF-8 text …``); a file that
holds no structure at all gives one failed record; reading one file (or one structure of a
multi-structure file) is stopped after ``time_limit`` seconds (:data:`FILE_TIME_LIMIT`) when the
reader runs in the main thread of a Unix process.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import json
import os
import signal
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ssl_featurizer.graph.decode import MAX_JSON_CHARS

FORMATS = ("cif", "poscar", "jsonl", "json", "extxyz")
#: How each format is named in failure reasons.
FORMAT_NAMES = {"cif": "CIF", "poscar": "POSCAR", "jsonl": "JSON-lines", "json": "JSON", "extxyz": "extxyz"}
#: Default bound (seconds) on reading one file, or one structure of a multi-structure file.
FILE_TIME_LIMIT = 60.0
#: Reason prefix of the records of files that are not structure files (see :attr:`Record.skipped`).
SKIPPED = "skipped: not a structure file"


@dataclass(frozen=True)
class Record:
    """One structure of a source, or the reason it could not be read.

    Attributes:
        id: a stable name: the ``id`` field of a JSON object if present, else the file's relative path,
            with ``#k`` appended for the k-th structure of a multi-structure file or ``:line`` for JSON lines.
        cursor: ``(unit, index)`` position in the source (see the module docstring).
        structure: the pymatgen ``Structure``, or None if reading failed.
        error: None, or why reading failed (or, for a skipped file, why it is not read).
        skipped: True for a file of a folder that is not a structure file (its ``error`` says so).
        last: True when nothing more comes from this record's unit (a file that could not be parsed from here
            on, or one holding no structure).
        resume: where a reader resumed right after this record starts, when that is not the next index of the
            same unit (see :attr:`next_cursor`).
    """

    id: str
    cursor: tuple[int, int]
    structure: Any = None
    error: str | None = None
    skipped: bool = False
    last: bool = False
    resume: tuple[int, int] | None = None

    @property
    def next_cursor(self) -> tuple[int, int]:
        """The cursor to pass to ``iter_records(source, start=...)`` to continue right after this record: a
        record that ends its unit (:attr:`last`) is never read again, however the run was interrupted."""
        return self.resume if self.resume is not None else (self.cursor[0], self.cursor[1] + 1)


def detect_format(path: str | Path) -> str:
    """The format of a file from its name (see the module docstring).

    Raises:
        ValueError: for a name that matches no supported format.
    """
    name = Path(path).name.lower()
    base = name.removesuffix(".gz")
    if base.endswith((".cif", ".mcif")):
        return "cif"
    if base.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if base.endswith(".json"):
        return "json"
    if base.endswith((".xyz", ".extxyz")):
        return "extxyz"
    if base.startswith(("poscar", "contcar")) or base.endswith((".vasp", ".poscar")):
        return "poscar"
    raise ValueError(f"{path}: unknown structure file type; supported: CIF (.cif/.mcif), POSCAR/CONTCAR/.vasp, "
                     ".json/.jsonl(.gz), .xyz/.extxyz, or a folder of such files")


def open_text(path: str | Path, binary: bool = False) -> IO:
    """Open a structure file for reading, decompressing it when its name ends in ``.gz``.

    Text mode decodes UTF-8 (other bytes raise ``UnicodeDecodeError`` when read); ``binary=True``
    gives the raw bytes.
    """
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb") if binary else gzip.open(path, "rt", encoding="utf-8")
    return path.open("rb") if binary else path.open(encoding="utf-8")


def list_files(folder: str | Path, unsupported: bool = False, exclude: tuple[str | Path, ...] = ()) -> list[Path]:
    """Files below ``folder``, sorted by relative path (hidden entries skipped).

    Args:
        folder: the folder.
        unsupported: also list files whose name matches no supported format.
        exclude: folders below ``folder`` left out with everything in them (e.g. an output folder written
            inside the input folder).
    """
    folder = Path(folder)
    left_out = {os.path.realpath(p) for p in exclude}
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) not in left_out)
        for name in files:
            if name.startswith("."):
                continue
            if not unsupported:
                try:
                    detect_format(name)
                except ValueError:
                    continue
            found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def source_fingerprint(source: str | Path, exclude: tuple[str | Path, ...] = ()) -> str:
    """A cheap digest of what a source holds (names, sizes, modification times), to detect changed inputs;
    ``exclude`` as for :func:`list_files`."""
    source = Path(source)
    files = list_files(source, unsupported=True, exclude=exclude) if source.is_dir() else [source]
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        rel = path.relative_to(source).as_posix() if source.is_dir() else path.name
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def iter_records(source: str | Path, fmt: str | None = None, start: tuple[int, int] = (0, 0),
                 time_limit: float | None = FILE_TIME_LIMIT, exclude: tuple[str | Path, ...] = ()) -> Iterator[Record]:
    """Yield the structures of ``source`` in order, starting at cursor ``start``.

    Args:
        source: a folder or a file (see the module docstring).
        fmt: force a format (one of :data:`FORMATS`) for a single file; default: from the name.
        start: resume from this cursor (as stored by :mod:`ssl_featurizer.stream`).
        time_limit: seconds allowed for reading one file (or one structure of a multi-structure
            file, or one JSON line); past it the file's record fails with a reason. None: no limit.
        exclude: folders of a folder source to leave out (:func:`list_files`).

    Raises:
        FileNotFoundError: if ``source`` does not exist.
        ValueError: for an unsupported file name or ``fmt``.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: choose one of {FORMATS}")
    unit0, index0 = start
    if source.is_dir():
        files = list_files(source, unsupported=True, exclude=exclude)
        for unit in range(unit0, len(files)):
            path = files[unit]
            rel = path.relative_to(source).as_posix()
            skip = index0 if unit == unit0 else 0
            try:
                kind = detect_format(path)
            except ValueError:
                if skip == 0:
                    yield Record(rel, (unit, 0), error=f"{SKIPPED} (unknown type; supported: CIF, POSCAR, "
                                 "JSON, JSON-lines, extxyz)", skipped=True)
                continue
            if kind == "jsonl":
                records = ((rec.cursor[0], rec) for rec in _jsonl_records(path, skip, time_limit, rel))
            else:
                records = _file_records(path, kind, rel, skip, time_limit)
            for index, rec in records:
                yield Record(rec.id, (unit, index), rec.structure, rec.error, rec.skipped, rec.last,
                             (unit + 1, 0) if rec.last else None)
        return
    fmt = fmt or detect_format(source)
    if fmt == "jsonl":
        if index0 == _EXHAUSTED:
            return
        for rec in _jsonl_records(source, unit0 + (1 if index0 > 0 else 0), time_limit):
            yield Record(rec.id, rec.cursor, rec.structure, rec.error, rec.skipped, rec.last,
                         (rec.cursor[0], _EXHAUSTED) if rec.last else None)
        return
    if unit0 > 0:
        return
    for index, rec in _file_records(source, fmt, source.name, index0, time_limit):
        yield Record(rec.id, (0, index), rec.structure, rec.error, rec.skipped, rec.last, (1, 0) if rec.last else None)


#: the index of a resume cursor after a single JSON-lines file could not be read to its end
_EXHAUSTED = -1


class ReadTimeout(Exception):
    """Reading one file (or one structure of it) took longer than the time limit."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`ReadTimeout` in the block after ``seconds`` (main thread of a Unix process only).

    Does nothing elsewhere, or when an interval timer is already running (someone else's alarm).
    """
    usable = (seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise ReadTimeout(f"reading took longer than the {seconds:g} s time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _failure(exc: BaseException) -> str:
    """What went wrong, in words and on one line (for reasons that already name the format)."""
    return " ".join(_describe(exc).split())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}; binary or other encoding?)"
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"corrupted or truncated gzip data ({type(exc).__name__}: {exc})"
    if isinstance(exc, (ReadTimeout, ImportError)):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"missing entry {exc.args[0]!r} (truncated or incomplete file?)" if exc.args else "missing entry"
    if isinstance(exc, ValueError) and str(exc):
        return f"{type(exc).__name__}: {exc}"
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return f"{text} (malformed or truncated file?)"


def _jsonl_records(path: Path, first_line: int, time_limit: float | None = FILE_TIME_LIMIT,
                   name: str | None = None) -> Iterator[Record]:
    """Records of a JSON-lines file from line ``first_line`` (0-based) on; cursors ``(line, 0)``."""
    name = name or path.name
    line_no = first_line
    with open_text(path, binary=True) as fh:
        lines = itertools.islice(_bounded_lines(fh, MAX_JSON_CHARS), first_line, None)
        while True:
            label = f"{name}:{line_no + 1}"
            try:
                raw = next(lines, None)
            except (OSError, EOFError, zlib.error) as exc:
                yield Record(label, (line_no, 0), error=f"could not read JSON-lines from line {line_no + 1} on: "
                             f"{_failure(exc)}", last=True)
                return
            if raw is None:
                if line_no == 0:
                    yield Record(name, (0, 0), error="could not parse JSON-lines: the file holds no structure (empty?)",
                                 last=True)
                return
            where = f"could not parse JSON-lines line {line_no + 1}"
            if raw is _TOO_LONG:
                yield Record(label, (line_no, 0), error=f"{where}: longer than the limit of {MAX_JSON_CHARS:,} bytes "
                             "(not read)")
                line_no += 1
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Record(label, (line_no, 0), error=f"{where}: {_failure(exc)}")
                line_no += 1
                continue
            if not text.strip():
                yield Record(label, (line_no, 0), error=f"{where}: empty line")
                line_no += 1
                continue
            try:
                with _time_limit(time_limit):
                    obj = json.loads(text)
                    structure, error = structure_from_object(obj)
            except json.JSONDecodeError as exc:
                yield Record(label, (line_no, 0), error=f"{where}: invalid JSON: {exc}")
            except Exception as exc:  # noqa: BLE001 - e.g. too deep nesting, too long integers, time limit
                yield Record(label, (line_no, 0), error=f"{where}: {_failure(exc)}")
            else:
                yield Record(_object_id(obj) or label, (line_no, 0), structure,
                             None if error is None else f"{where}: {error}")
            line_no += 1


_TOO_LONG = b""  # marks a line longer than the limit (a real line is never empty: it ends in a newline or EOF)


def _bounded_lines(fh: IO[bytes], limit: int) -> Iterator[bytes]:
    """The lines of a binary file, each read with at most ``limit + 1`` bytes in memory; a longer line is
    skipped (read in pieces, not kept) and given as :data:`_TOO_LONG`."""
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = fh.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield _TOO_LONG
        else:
            yield line


def _object_id(obj: Any) -> str | None:
    if isinstance(obj, dict):
        for key in ("id", "material_id", "task_id", "name"):
            if isinstance(obj.get(key), (str, int)):
                return str(obj[key])
    return None


def structure_from_object(obj: Any) -> tuple[Any, str | None]:
    """A Structure from a Structure, a JSON object or a JSON string, or None and the reason.

    Accepted: a pymatgen ``Structure`` (or ``IStructure``); a dict from ``Structure.as_dict()``; the corpus format
    ``{"lattice", "species", "frac"}``; a dict with a ``structure`` entry of either kind; or any of these as a JSON
    string. Data are decoded strictly (:mod:`ssl_featurizer.graph.decode`: nothing a document names is imported
    or run; sizes are bounded). Never raises.
    """
    from pymatgen.core import IStructure

    from ssl_featurizer.graph.decode import DecodeError, NotAStructureError, loads_structure, structure_from_dict

    if isinstance(obj, IStructure):
        return obj, None
    try:
        if isinstance(obj, (str, bytes)):
            return loads_structure(obj), None
        return structure_from_dict(obj), None
    except NotAStructureError as exc:
        return None, str(exc)
    except DecodeError as exc:
        return None, f"could not build a structure from the JSON object: {exc}"
    except Exception as exc:  # noqa: BLE001 - any other failure becomes the record's reason
        return None, f"could not build a structure from the JSON object: {_failure(exc)}"


def _file_records(path: Path, fmt: str, name: str, skip: int,
                  time_limit: float | None = FILE_TIME_LIMIT) -> Iterator[tuple[int, Record]]:
    """(index, record) of every structure in one file from index ``skip`` on.

    A file that fails to parse gives one error record, at the index where reading stopped; a file
    with no structure at all gives one error record too. Each step of the reader is time-limited.
    """
    index = skip
    what = FORMAT_NAMES[fmt]
    reader = _READERS[fmt](path, name, skip)
    try:
        while True:
            with _time_limit(time_limit):
                item = next(reader, None)
            if item is None:
                break
            index, label, structure, error = item
            yield index, Record(label, (0, index), structure,
                                None if error is None else f"could not read a structure from {what}: {error}")
            index += 1
    except Exception as exc:  # noqa: BLE001 - an unreadable file (or its rest) is one failed record
        yield index, Record(name if index == 0 else f"{name}#{index}", (0, index),
                            error=f"could not parse {what}: {_failure(exc)}", last=True)
        return
    if index == 0:
        yield 0, Record(name, (0, 0), error=f"could not parse {what}: the file holds no structure (empty?)",
                        last=True)


_Item = tuple[int, str, Any, "str | None"]  # (index in file, record id, structure or None, error or None)


def _read_cif(path: Path, name: str, skip: int) -> Iterator[_Item]:
    import warnings

    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_text(path) as fh:
            parser = CifParser.from_str(fh.read())
        structures = parser.parse_structures(primitive=False, on_error="raise")
    for index, s in enumerate(structures):
        if index >= skip:
            yield index, name if len(structures) == 1 else f"{name}#{index}", s, None


def _read_poscar(path: Path, name: str, skip: int) -> Iterator[_Item]:
    from pymatgen.io.vasp import Poscar

    if skip == 0:
        with open_text(path) as fh:
            yield 0, name, Poscar.from_str(fh.read()).structure, None


#: largest whole-JSON file read (characters after decompression); JSON lines are read a line at a time
MAX_JSON_FILE_CHARS = 2**30


def read_json_file(path: str | Path) -> Any:
    """The parsed content of a (``.gz``) JSON file of at most :data:`MAX_JSON_FILE_CHARS` characters: plain
    JSON values only (nothing is decoded into objects).

    Raises:
        ValueError: a larger file, or invalid JSON.
    """
    with open_text(path) as fh:
        text = fh.read(MAX_JSON_FILE_CHARS + 1)
    if len(text) > MAX_JSON_FILE_CHARS:
        raise ValueError(f"the JSON file is larger than {MAX_JSON_FILE_CHARS:,} characters: write it as JSON lines "
                         "(one structure per line, read one at a time)")
    return json.loads(text)


def _read_json(path: Path, name: str, skip: int) -> Iterator[_Item]:
    obj = read_json_file(path)
    if isinstance(obj, dict) and {"columns", "index", "data"} <= obj.keys():  # matminer / pandas "split"
        columns = obj["columns"]
        if "structure" not in columns:
            raise ValueError(f"matminer DataFrame has no 'structure' column (columns: {list(columns)[:10]})")
        at = columns.index("structure")
        ids = columns.index("id") if "id" in columns else None
        for index, (label, row) in enumerate(zip(obj["index"], obj["data"])):
            if index >= skip:
                yield index, str(row[ids] if ids is not None else label), *structure_from_object(row[at])
        return
    if not isinstance(obj, list):
        if skip == 0:
            yield 0, _object_id(obj) or name, *structure_from_object(obj)
        return
    for index, item in enumerate(obj):
        if index >= skip:
            yield index, _object_id(item) or f"{name}#{index}", *structure_from_object(item)


def _read_extxyz(path: Path, name: str, skip: int) -> Iterator[_Item]:
    try:
        from ase.io import iread
    except ImportError as exc:
        raise ImportError("reading extxyz needs ASE: pip install ase") from exc
    from pymatgen.io.ase import AseAtomsAdaptor

    with open_text(path) as fh:
        for index, atoms in enumerate(iread(fh, index=f"{skip}:", format="extxyz"), start=skip):
            label = f"{name}#{index}"
            if not atoms.pbc.all() or atoms.cell.rank < 3:
                yield index, label, None, "frame is not periodic in 3 dimensions (needs a cell and pbc=T T T)"
                continue
            try:
                yield index, label, AseAtomsAdaptor.get_structure(atoms), None
            except Exception as exc:  # noqa: BLE001
                yield index, label, None, _failure(exc)


_READERS: dict[str, Callable[[Path, str, int], Iterator[_Item]]] = {
    "cif": _read_cif, "poscar": _read_poscar, "json": _read_json, "extxyz": _read_extxyz,
}


#: the table readers' row of a structure that could not be read: ``{"id", "reason"}``
TableFailure = dict


def _table_row_id(row: dict, ids: str | None, default: str) -> str:
    value = row.get(ids) if ids else None
    return default if value in (None, "") else str(value)


def read_structure_csv(path: str | Path, structure: str = "structure", ids: str | None = "id",
                       select: Callable[[Any], Any] | None = None) -> tuple[list[dict[str, Any]], list[TableFailure]]:
    """Rows of a CSV file whose ``structure`` column holds structures as JSON text (``Structure.as_dict()`` or the
    corpus format), each decoded strictly (:func:`structure_from_object`: nothing a document names is imported).

    Args:
        path: the CSV file (``.gz`` too), with a header row.
        structure: the column of structure JSON text.
        ids: the column naming each row (default ``id``; absent: ``<file>:<line>``).
        select: called with a DataFrame of the well-formed rows, undecoded, returns the positions (or a boolean
            mask) of the rows to keep: only those are decoded (a sample of a large file costs what the sample costs);
            rows not selected are neither returned nor reported.

    Returns:
        ``(rows, failures)``: every row that decoded, as ``{column: text}`` with the column ``structure`` replaced
        by the Structure (and ``"id"`` set); one ``{"id", "reason"}`` per row that did not.

    Raises:
        ValueError: no header, or no ``structure`` column.
    """
    import csv

    csv.field_size_limit(max(csv.field_size_limit(), MAX_JSON_CHARS))
    records, failures = [], []
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or structure not in reader.fieldnames:
            raise ValueError(f"{path}: no column {structure!r} in the header {reader.fieldnames}")
        for row in reader:
            key = _table_row_id(row, ids, f"{Path(path).name}:{reader.line_num}")
            if None in row or any(v is None for v in row.values()):
                failures.append({"id": key, "reason": f"line {reader.line_num}: wrong number of fields"})
                continue
            records.append((row, key))
    return _decode_records(records, failures, structure, select)


def read_structure_jsonl(path: str | Path, structure: str = "structure", ids: str | None = "id",
                         select: Callable[[Any], Any] | None = None) -> tuple[list[dict[str, Any]], list[TableFailure]]:
    """Rows of a JSON-lines file, one JSON object per line holding a structure (under ``structure``) and other
    fields (a target, a site index, …); structures decoded strictly, lines bounded to the JSON size limit.

    Returns:
        ``(rows, failures)`` as :func:`read_structure_csv` (other fields keep their JSON values; ``select`` too).
    """
    records, failures = [], []
    with open_text(path, binary=True) as fh:
        for k, raw in enumerate(_bounded_lines(fh, MAX_JSON_CHARS)):
            label = f"{Path(path).name}:{k + 1}"
            if raw is _TOO_LONG:
                failures.append({"id": label, "reason": f"line {k + 1}: longer than {MAX_JSON_CHARS:,} bytes"})
                continue
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                failures.append({"id": label, "reason": f"line {k + 1}: invalid JSON: {_failure(exc)}"})
                continue
            if not isinstance(obj, dict) or structure not in obj:
                failures.append({"id": label, "reason": f"line {k + 1}: not a JSON object with a {structure!r} entry"})
                continue
            records.append((obj, _table_row_id(obj, ids, label)))
    return _decode_records(records, failures, structure, select)


def selected_positions(keep: Any) -> Any:
    """Sorted row positions from what a ``select`` callable of the table readers returned: positions, or a boolean
    mask over the rows."""
    import numpy as np

    keep = np.asarray(keep)
    return np.flatnonzero(keep) if keep.dtype == bool else np.sort(keep)


def _decode_records(records: list[tuple[dict[str, Any], str]], failures: list[TableFailure], structure: str,
                    select: Callable[[Any], Any] | None) -> tuple[list[dict[str, Any]], list[TableFailure]]:
    """The ``(record, id)`` pairs ``select`` keeps, each with its ``structure`` field decoded strictly (and its
    ``id``); a record that does not decode goes to ``failures`` with the reason."""
    if select is not None:
        import pandas as pd

        records = [records[k] for k in selected_positions(select(pd.DataFrame([r for r, _ in records])))]
    rows = []
    for record, key in records:
        obj, reason = structure_from_object(record[structure])
        if obj is None:
            failures.append({"id": key, "reason": f"{structure} could not be read: {reason}"})
        else:
            rows.append({**record, structure: obj, "id": key})
    return rows, failures


def read_labels_csv(path: str | Path, target: str | None = None,
                    ids: str = "id") -> tuple[dict[str, float], list[TableFailure]]:
    """Targets by id from a CSV ``id,<target>`` (a header row; other columns ignored).

    Args:
        path: the CSV file.
        target: the target column (default: the only column besides ``ids``).
        ids: the id column.

    Returns:
        ``({id: target}, failures)``; a row whose target is not a finite number is a failure.

    Raises:
        ValueError: a missing column, an ambiguous target column, or an id given twice.
    """
    import csv
    import math

    labels: dict[str, float] = {}
    failures = []
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        if ids not in names:
            raise ValueError(f"{path}: no {ids!r} column in the header {names}")
        if target is None:
            others = [n for n in names if n != ids]
            if len(others) != 1:
                raise ValueError(f"{path}: name the target column (one of {others})")
            target = others[0]
        if target not in names:
            raise ValueError(f"{path}: no {target!r} column in the header {names}")
        for row in reader:
            key = (row.get(ids) or "").strip()
            if key in labels:
                raise ValueError(f"{path}: id {key!r} is given twice (line {reader.line_num})")
            try:
                value = float(row.get(target) or "")
            except ValueError:
                value = math.nan
            if not key or not math.isfinite(value):
                failures.append({"id": key or f"line {reader.line_num}",
                                 "reason": f"label {row.get(target)!r} is not a finite number" if key else "no id"})
                continue
            labels[key] = value
    return labels, failures
