"""Nearest known materials: an exact nearest-neighbour index over pooled descriptors of known structures.

:class:`SimilarityIndex` holds one descriptor row per known structure (with its id and reduced formula),
optionally standardised, and answers "which known structures are closest to these?" exactly: euclidean distance
in the (standardised) descriptor space, no approximation. It is built from structures
(:meth:`SimilarityIndex.build`), from a parquet dataset written by ``ssl-featurizer featurize``
(:meth:`SimilarityIndex.from_parquet`) or from a feature matrix (:meth:`SimilarityIndex.from_features`), and is
saved as a folder holding ``index.npz`` (vectors, ids, formulas, standardisation; read back without pickle) and
``index.json`` (featurizer settings, sizes, the npz file's sha256)::

    index = SimilarityIndex.build(structures, ids)   # layers "012345", mean+std pooling by default
    index.save("known.index")
    SimilarityIndex.load("known.index").query(new_structures, k=5)   # DataFrame: query, rank, id, formula, distance

From the shell: ``ssl-featurizer index INPUT -o INDEX`` and ``ssl-featurizer similar QUERY --index INDEX``.

The search is exact with respect to the stored vectors (float32): candidate distances come from one float32
matrix product, every candidate within a proven rounding bound of the k-th is re-measured in float64, and ties
are broken by index position.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

#: layers and pooling of an index when none are given: the highest precision of retrieving the same structure type
#: among the layer sets measured in docs/similarity.md (``studies/similarity_study.py``)
SEARCH_LAYERS = "012345"
SEARCH_POOLING = ("mean", "std")
#: files of a saved index folder
VECTORS_FILE = "index.npz"
META_FILE = "index.json"
_FORMAT_VERSION = 1
#: query rows compared with the whole index at once (bounds the float32 distance block to ~``_BLOCK_CELLS`` cells)
_BLOCK_CELLS = 2**24


class SimilarityIndexError(ValueError):
    """A saved index is damaged, or does not match the featurizer or the query."""


def _check_matrix(X: Any, what: str, n_features: int | None = None) -> np.ndarray:
    """``X`` as a 2-D float64 array without NaN/inf rows and with ``n_features`` columns, else a clear error."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D feature matrix, got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{what}: {X.shape[1]} features, but the index holds {n_features}; build the rows with "
                         "the index's featurizer settings (SimilarityIndex.featurizer)")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(f"{what}: {bad.size} row(s) contain NaN or infinite values (first at positions "
                         f"{bad[:5].tolist()}); a failed featurization gives a NaN row: drop those rows first")
    return X


def squared_norms(vectors: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Squared euclidean norms of the rows, in float64, without a float64 copy of the whole matrix.

    Shapes:
        vectors: ``(n, d)``; returns ``(n,)``.
    """
    out = np.empty(len(vectors))
    for start in range(0, len(vectors), chunk):
        block = np.asarray(vectors[start:start + chunk], dtype=np.float64)
        out[start:start + chunk] = np.einsum("ij,ij->i", block, block)
    return out


def exact_kneighbors(vectors: np.ndarray, queries: np.ndarray, k: int,
                     sq_norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``vectors`` to each query row, exactly (euclidean; ties by position).

    A float32 matrix product proposes candidates; every row whose approximate squared distance lies within a
    rounding bound of the k-th smallest is re-measured in float64 from the stored values, so the result equals
    brute force on ``vectors.astype(float64)`` (up to float64 rounding).

    Args:
        vectors: the indexed rows (float32 or float64).
        queries: the query rows (float64 is used for the exact distances).
        k: neighbours per query, ``1 <= k <= n``.
        sq_norms: ``(vectors.astype(float64) ** 2).sum(1)`` if already known.

    Returns:
        ``(distances, indices)``, nearest first.

    Shapes:
        vectors: ``(n, d)``; queries: ``(m, d)``; sq_norms: ``(n,)``; distances (float64) and indices (int64):
        ``(m, k)``.
    """
    n, d = vectors.shape
    if not 1 <= k <= n:
        raise ValueError(f"k={k}: must be between 1 and the number of indexed entries ({n})")
    v32 = np.ascontiguousarray(vectors, dtype=np.float32)
    if sq_norms is None:
        sq_norms = squared_norms(vectors)
    sq32 = sq_norms.astype(np.float32)
    eps = float(np.finfo(np.float32).eps)
    max_sq = float(sq_norms.max(initial=0.0))
    q64 = np.asarray(queries, dtype=np.float64)
    dist = np.empty((len(q64), k))
    idx = np.empty((len(q64), k), dtype=np.int64)
    block = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, len(q64), block):
        qb = q64[start:start + block]
        qn = np.einsum("ij,ij->i", qb, qb)
        approx = sq32[None, :] - 2.0 * (qb.astype(np.float32) @ v32.T) + qn.astype(np.float32)[:, None]
        # |error| of the float32 estimate: the dot product (d terms), the rounding of q, the norms and the sums
        tol = (d + 8) * eps * (max_sq + qn)
        kth = np.partition(approx, k - 1, axis=1)[:, k - 1] if k < n else approx.max(axis=1)
        for row in range(len(qb)):
            cand = np.flatnonzero(approx[row] <= kth[row] + 2.0 * tol[row])
            diff = vectors[cand].astype(np.float64) - qb[row]
            exact = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            order = np.lexsort((cand, exact))[:k]
            dist[start + row], idx[start + row] = exact[order], cand[order]
    return dist, idx


class SimilarityIndex:
    """Exact nearest-neighbour search over descriptors of known structures, with their ids and formulas.

    Build it with :meth:`build` (structures), :meth:`from_parquet` (a ``ssl-featurizer featurize`` output) or
    :meth:`from_features` (any feature matrix); query it with :meth:`query` (structures, featurized with the
    same settings) or :meth:`kneighbors` (feature rows); keep it with :meth:`save` / :meth:`load`.

    Args:
        vectors: the indexed descriptor rows, already standardised when ``mean``/``scale`` are given.
        ids: one name per row.
        formulas: reduced formula per row ("" when unknown).
        mean: column means subtracted from raw descriptor rows (None: rows are used as they are).
        scale: column scales raw rows are divided by after centring (None with ``mean``).
        featurizer: ``{"model", "model_fingerprint", "layers", "pooling"}`` of the
            :class:`~ssl_featurizer.featurizers.structure.SSLStructureFeaturizer` that made the rows, or None for
            rows of another descriptor (then only :meth:`kneighbors` can be queried).

    Shapes:
        vectors: ``(n_entries, n_features)``; ids, formulas: ``(n_entries,)``; mean, scale: ``(n_features,)``.

    Attributes:
        failures: ``[(id, reason)]`` of the structures that could not be featurized while building (not indexed).
    """

    def __init__(self, vectors: np.ndarray, ids: Sequence[str], formulas: Sequence[str] | None = None,
                 mean: np.ndarray | None = None, scale: np.ndarray | None = None,
                 featurizer: dict[str, Any] | None = None):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise ValueError(f"an index needs a non-empty 2-D matrix of vectors, got shape {self.vectors.shape}")
        self.ids = np.asarray([str(i) for i in ids], dtype=str)
        self.formulas = np.asarray(["" if f is None else str(f) for f in formulas] if formulas is not None
                                   else [""] * len(self.ids), dtype=str)
        if not len(self.ids) == len(self.formulas) == len(self.vectors):
            raise ValueError(f"{len(self.vectors)} vectors, {len(self.ids)} ids and {len(self.formulas)} formulas: "
                             "one of each per entry")
        if (mean is None) != (scale is None):
            raise ValueError("give both mean and scale (standardised index) or neither")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.featurizer_settings = featurizer
        self.failures: list[tuple[str, str]] = []
        self._sq_norms = squared_norms(self.vectors)

    # ---- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_features(cls, features: Any, ids: Sequence[str] | None = None, formulas: Sequence[str] | None = None,
                      standardize: bool = True, featurizer: dict[str, Any] | None = None) -> SimilarityIndex:
        """An index of feature rows (any descriptor).

        Args:
            features: descriptor rows without NaN (a DataFrame's index gives the ids when ``ids`` is None).
            ids: one name per row (default: the DataFrame index, else ``"0", "1", …``).
            formulas: reduced formula per row (optional).
            standardize: z-score every column with the rows' mean and standard deviation (constant columns are
                only centred); queries are transformed the same way.
            featurizer: settings of the SSL featurizer that made the rows (see the class), if any.

        Shapes:
            features: ``(n_entries, n_features)``.
        """
        if ids is None:
            ids = list(features.index) if hasattr(features, "index") else [str(i) for i in range(len(features))]
        X = _check_matrix(features, "features")
        mean = scale = None
        if standardize:
            mean, scale = X.mean(axis=0), X.std(axis=0)
            scale[scale == 0] = 1.0
            X = (X - mean) / scale
        return cls(X, ids, formulas, mean, scale, featurizer)

    @classmethod
    def build(cls, structures: Any, ids: Sequence[str] | None = None, layers: str | Sequence[int] = SEARCH_LAYERS,
              pooling: str | Sequence[str] = SEARCH_POOLING, model: str = "default", standardize: bool = True,
              batch_size: int = 64, chunk_size: int = 2000, progress: bool = False) -> SimilarityIndex:
        """Featurize structures and index them; structures that fail are left out and listed in ``failures``.

        Args:
            structures: pymatgen Structures (a list, a Series — its index gives the ids —, or a mapping id →
                Structure).
            ids: one name per structure (default: the Series index or mapping keys, else positions).
            layers: encoder layers, as for :class:`~ssl_featurizer.featurizers.structure.SSLStructureFeaturizer`.
            pooling: pooling(s), as for the featurizer.
            model: pretrained model name, as for the featurizer.
            batch_size: structures per forward pass.
            standardize: see :meth:`from_features`.
            chunk_size: structures featurized at a time (memory grows with it).
            progress: progress bar.
        """
        from ssl_featurizer.featurizers.inputs import as_structure_list
        from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

        if isinstance(structures, dict):
            ids = list(structures) if ids is None else ids
            structures = list(structures.values())
        structures, labels = as_structure_list(structures)
        ids = [str(i) for i in (ids if ids is not None else labels if labels is not None else range(len(structures)))]
        if len(ids) != len(structures):
            raise ValueError(f"{len(structures)} structures but {len(ids)} ids")
        featurizer = SSLStructureFeaturizer(model=model, layers=layers, pooling=pooling, batch_size=batch_size,
                                            progress=progress).fit()
        rows, errors = [], []
        for start in range(0, len(structures), chunk_size):
            r, e = featurizer.featurize_with_errors(structures[start:start + chunk_size], progress=progress)
            rows.append(r)
            errors += e
        X = np.vstack(rows) if rows else np.empty((0, featurizer.n_features_out_))
        ok = [i for i, e in enumerate(errors) if e is None]
        if not ok:
            raise ValueError(f"none of the {len(structures)} structures could be featurized"
                             + (f" (first: {ids[0]}: {errors[0]})" if errors else ""))
        index = cls.from_features(X[ok], [ids[i] for i in ok],
                                  [structures[i].composition.reduced_formula for i in ok], standardize,
                                  settings_of(featurizer))
        index.failures = [(ids[i], e) for i, e in enumerate(errors) if e is not None]
        if index.failures:
            shown = "; ".join(f"{i}: {e}" for i, e in index.failures[:3])
            warnings.warn(f"{len(index.failures)} of {len(structures)} structures could not be featurized and are "
                          f"not indexed: {shown}", UserWarning, stacklevel=2)
        return index

    @classmethod
    def from_parquet(cls, path: str | Path, standardize: bool = True, formulas: bool = True) -> SimilarityIndex:
        """An index of a parquet dataset written by ``ssl-featurizer featurize`` (or ``featurize_to_parquet``).

        The featurizer settings come from the dataset's manifest. The parquet holds no formulas: with
        ``formulas=True`` they are read from the dataset's source when it still exists (one more pass over it),
        else left empty.

        Raises:
            FileNotFoundError: ``path`` is not a featurized dataset.
        """
        from ssl_featurizer.stream import MANIFEST, read_parquet

        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise FileNotFoundError(f"{path}: not a dataset written by `ssl-featurizer featurize` (no {MANIFEST})")
        manifest = json.loads((path / MANIFEST).read_text())
        table = read_parquet(path)
        if table.empty:
            raise ValueError(f"{path}: the dataset holds no featurized rows")
        positions = table.pop("position").to_numpy()
        names = None
        source = Path(manifest.get("source", ""))
        if formulas and manifest.get("source") and source.exists():
            names = formulas_of(source, positions, manifest.get("fmt"))
        settings = {"model": manifest["model"], "model_fingerprint": manifest["model_fingerprint"],
                    "layers": list(manifest["layers"]), "pooling": list(manifest["pooling"])}
        return cls.from_features(table.to_numpy(dtype=float), list(table.index), names, standardize, settings)

    # ---- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the index into the folder ``path`` (``index.npz`` + ``index.json``); return the folder."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is a file; an index is saved as a folder")
        path.mkdir(parents=True, exist_ok=True)
        arrays = {"vectors": self.vectors, "ids": self.ids, "formulas": self.formulas}
        if self.mean is not None:
            arrays.update(mean=self.mean, scale=self.scale)
        tmp = path / f".{VECTORS_FILE}.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(path / VECTORS_FILE)
        meta = {"format_version": _FORMAT_VERSION, "n_entries": len(self),
                "n_features": self.n_features, "standardized": self.mean is not None,
                "featurizer": self.featurizer_settings, "failures": len(self.failures),
                "vectors_sha256": _sha256(path / VECTORS_FILE)}
        (path / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SimilarityIndex:
        """Read an index written by :meth:`save` (no pickle is involved).

        Raises:
            FileNotFoundError: no saved index at ``path``.
            SimilarityIndexError: the files do not match each other (damaged or edited).
        """
        path = Path(path)
        if not (path / META_FILE).is_file() or not (path / VECTORS_FILE).is_file():
            raise FileNotFoundError(f"{path}: no saved similarity index ({META_FILE} and {VECTORS_FILE}); build one "
                                    "with `ssl-featurizer index` or SimilarityIndex.save")
        meta = json.loads((path / META_FILE).read_text())
        if meta.get("format_version") != _FORMAT_VERSION:
            raise SimilarityIndexError(f"{path}: index format {meta.get('format_version')!r}, this version reads "
                                       f"{_FORMAT_VERSION}; rebuild the index")
        if _sha256(path / VECTORS_FILE) != meta["vectors_sha256"]:
            raise SimilarityIndexError(f"{path / VECTORS_FILE} does not match {META_FILE} (sha256 differs): "
                                       "damaged or replaced; rebuild the index")
        with np.load(path / VECTORS_FILE, allow_pickle=False) as data:
            index = cls(data["vectors"], data["ids"], data["formulas"], data.get("mean"), data.get("scale"),
                        meta["featurizer"])
        return index

    # ---- queries --------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def n_features(self) -> int:
        """Number of descriptor columns."""
        return self.vectors.shape[1]

    def featurizer(self) -> SSLStructureFeaturizer:
        """A featurizer that makes rows comparable with the index (same model weights, layers and pooling).

        Raises:
            SimilarityIndexError: the index was built from other descriptors, or the model's weights differ.
        """
        from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

        s = self.featurizer_settings
        if not s:
            raise SimilarityIndexError("this index was built from feature rows of another descriptor: query it "
                                       "with kneighbors(rows) instead of structures")
        featurizer = SSLStructureFeaturizer(model=s["model"], layers=tuple(s["layers"]),
                                            pooling=tuple(s["pooling"])).fit()
        if featurizer.model_fingerprint_ != s.get("model_fingerprint"):
            raise SimilarityIndexError(f"model {s['model']!r} no longer describes structures as when this index was "
                                       "built with; rebuild the index")
        return featurizer

    def transform(self, features: Any) -> np.ndarray:
        """Raw descriptor rows in the index's space (standardised as the index was).

        Shapes:
            features: ``(m, n_features)``; returns ``(m, n_features)`` float64.
        """
        X = _check_matrix(features, "query rows", self.n_features)
        return X if self.mean is None else (X - self.mean) / self.scale

    def kneighbors(self, features: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Distances and positions of the ``k`` nearest entries of each raw descriptor row (exact).

        Returns:
            ``(distances, positions)``, nearest first; ``self.ids[positions]`` names the entries.

        Shapes:
            features: ``(m, n_features)``; distances, positions: ``(m, k)``.
        """
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(self)):
            raise ValueError(f"k={k!r}: must be an integer between 1 and the number of indexed entries ({len(self)})")
        return exact_kneighbors(self.vectors, self.transform(features), int(k), self._sq_norms)

    def query(self, structures: Any, k: int = 10, labels: Sequence[Any] | None = None) -> pd.DataFrame:
        """The ``k`` known structures nearest to each query structure.

        Args:
            structures: pymatgen Structures (list, Series — its index names the queries —, or a mapping).
            k: neighbours per query.
            labels: names of the queries (default: the Series index or mapping keys, else positions).

        Returns:
            A DataFrame with one row per (query, neighbour): ``query``, ``query_formula``, ``rank`` (1 = nearest),
            ``id``, ``formula``, ``distance`` (euclidean, in the index's standardised units).

        Raises:
            FeaturizationError: a query structure cannot be featurized (its position and reason are named).
        """
        import pandas as pd

        from ssl_featurizer.featurizers.inputs import as_structure_list

        if isinstance(structures, dict):
            labels = list(structures) if labels is None else labels
            structures = list(structures.values())
        structures, index_labels = as_structure_list(structures)
        labels = list(labels if labels is not None else index_labels if index_labels is not None
                      else range(len(structures)))
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(self)):
            raise ValueError(f"k={k!r}: must be an integer between 1 and the number of indexed entries ({len(self)})")
        rows = self.featurizer().transform(structures)
        dist, pos = self.kneighbors(rows, k)
        m = len(structures)
        return pd.DataFrame({
            "query": np.repeat(np.asarray(labels, dtype=object), k),
            "query_formula": np.repeat([s.composition.reduced_formula for s in structures], k),
            "rank": np.tile(np.arange(1, k + 1), m),
            "id": self.ids[pos.ravel()], "formula": self.formulas[pos.ravel()], "distance": dist.ravel()})

    def __repr__(self) -> str:
        s = self.featurizer_settings
        what = (f"layers {''.join(map(str, s['layers']))}, pooling {'+'.join(s['pooling'])}, {s['model']}" if s
                else "external features")
        return (f"SimilarityIndex({len(self)} entries × {self.n_features} features, {what}, "
                f"{'standardised' if self.mean is not None else 'raw'})")


def settings_of(featurizer: SSLStructureFeaturizer) -> dict[str, Any]:
    """What an index records of the featurizer that made its rows (model name and fingerprint, layers, pooling)."""
    from ssl_featurizer.pooling import parse_pooling

    model = featurizer.pretrained_model()
    return {"model": model.name, "model_fingerprint": model.fingerprint, "layers": list(featurizer.layer_indices(model)),
            "pooling": list(parse_pooling(featurizer.pooling))}


def formulas_of(source: str | Path, positions: Sequence[int], fmt: str | None = None) -> list[str]:
    """Reduced formulas of the records at ``positions`` (input order) of a structure source ("" if unreadable).

    Shapes:
        positions: ``(m,)``; returns ``m`` strings.
    """
    from ssl_featurizer.readers import iter_records

    wanted = {int(p): k for k, p in enumerate(positions)}
    out = [""] * len(wanted)
    last = max(wanted, default=-1)
    for position, record in enumerate(iter_records(source, fmt)):
        if position > last:
            break
        if position in wanted and record.structure is not None:
            out[wanted[position]] = record.structure.composition.reduced_formula
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def build_index(source: str | Path, out: str | Path, layers: str = SEARCH_LAYERS,
                pooling: Sequence[str] = SEARCH_POOLING, model: str = "default", standardize: bool = True,
                chunk_size: int = 1000, batch_size: int = 64, n_jobs: int = 1, limit: int | None = None, fmt: str | None = None, keep_features: bool = False,
                progress: bool = True) -> tuple[SimilarityIndex, float]:
    """``ssl-featurizer index``: featurize ``source`` (streamed, resumable) and save its index in ``out``.

    ``source`` is a structure source (see :mod:`ssl_featurizer.readers`), featurized into
    ``out/features.parquet`` by :func:`ssl_featurizer.stream.featurize_to_parquet` (an interrupted run resumes
    there; removed once the index is saved unless ``keep_features``), or an existing ``ssl-featurizer featurize``
    output folder, indexed as it is (``layers``/``pooling``/``model`` are then those of that dataset).

    Args:
        source: structure file or folder, or a ``ssl-featurizer featurize`` output folder.
        out: index folder to write.
        layers: encoder layers of the descriptor.
        pooling: pooling(s) of the descriptor.
        model: pretrained model name.
        standardize: z-score the columns (see :meth:`SimilarityIndex.from_features`).
        chunk_size: structures per parquet part (the unit of resumption).
        batch_size: structures per forward pass.
        n_jobs: processes building graphs.
        limit: index only the first ``limit`` structures (None: all).
        fmt: force the format of a single-file source.
        keep_features: keep ``out/features.parquet`` after the index is saved.
        progress: progress bar on stderr.

    Returns:
        ``(index, seconds)``.
    """
    import shutil

    from ssl_featurizer.stream import MANIFEST, featurize_to_parquet

    t0 = time.perf_counter()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if (source / MANIFEST).is_file():
        index = SimilarityIndex.from_parquet(source, standardize=standardize)
    else:
        features = out / "features.parquet"
        featurize_to_parquet(source, features, model=model, layers=layers, pooling=pooling, chunk_size=chunk_size,
                             batch_size=batch_size, limit=limit, fmt=fmt, n_jobs=n_jobs, progress=progress)
        index = SimilarityIndex.from_parquet(features, standardize=standardize)
        from ssl_featurizer.stream import read_errors

        index.failures = [(r["id"], r["reason"]) for r in read_errors(features)]
    index.save(out)
    if not (source / MANIFEST).is_file() and not keep_features:
        shutil.rmtree(out / "features.parquet")
    return index, time.perf_counter() - t0
