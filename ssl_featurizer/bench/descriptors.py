"""The descriptor zoo: named, cached featurizations of a task's inputs.

Spec strings (``--descriptors`` on the command line):

* ``ssl:<layers>[:<pooling>]`` — our pooled layer embeddings, e.g. ``ssl:012``, ``ssl:01:mean-std`` (with
  ``model=`` a foreign encoder such as ``"sevennet-0"``, its layers: ``ssl:12345``);
* ``magpie`` (ElementProperty, magpie preset), ``sine_coulomb`` (SineCoulombMatrix eigenvalues),
  ``ofm`` (OrbitalFieldMatrix, evaluated on the cell: :mod:`ssl_featurizer.bench.ofm`),
  ``site_stats_crystalnn`` (SiteStatsFingerprint of CrystalNNFingerprint ops), ``symmetry_density`` (GlobalSymmetryFeatures + DensityFeatures), ``soap`` (dscribe SOAP, averaged;
  optional extra);
* ``chgnet`` — the frozen features of the universal potential CHGNet (its pooled ``crystal_fea``; optional extra
  ``peer``, whose weights ship inside the ``chgnet`` package);
* site level: ``ssl_site:<layers>``, ``crystalnn_site``, ``opsite``, ``element_site`` (magpie of the
  site's element), ``chgnet_site`` (CHGNet's ``atom_fea`` of the site);
* concatenations with ``+``: ``ssl:012+magpie``.

Every component is computed once per (task data, spec, model) and cached on disk as ``.npz`` with its
featurization time; failed inputs are NaN rows (the protocol imputes them on training folds only).
Every descriptor is strictly inductive: a row depends on its input only (``sine_coulomb`` keeps a fixed number of
eigenvalues, ``soap`` takes the element table as its species list). A ``Task.subset`` reuses the rows of its parent
task's cached features, and ``ssl_site:<layers>`` with a cache is a column slice of the cached
all-layer site embeddings (the site featurizer computes every layer in one pass anyway).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ssl_featurizer.bench.tasks import Task

SITE_LEVEL = ("crystalnn_site", "opsite", "element_site", "chgnet_site")
#: descriptors computed in chunks of this many inputs, each chunk cached: a killed run resumes at its last chunk
CHUNK = 256
#: descriptors whose features depend on the whole input set (none since sine_coulomb and soap became strictly
#: inductive: a fixed eigenvalue count, the element table as species list); kept for descriptors added later
SET_DEPENDENT: tuple[str, ...] = ()
#: eigenvalues kept by ``sine_coulomb`` (largest first; zero-padded for smaller cells)
SINE_COULOMB_EIGS = 128
#: the heaviest element of ``soap``'s species list (the element table up to lawrencium)
SOAP_MAX_Z = 103
#: revision of a descriptor's definition, for results keyed by menus (``comparison.menu_id``): 2 = strictly
#: inductive (no dependence on the other rows of the set)
REVISIONS = {"sine_coulomb": 2}


def matminer_rows(featurizer: Any, entries: list) -> np.ndarray:
    """A matminer featurizer's rows for ``entries`` as a float matrix; a failed entry is a NaN row."""
    rows = featurizer.featurize_many(entries, ignore_errors=True, pbar=False)
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def _magpie(structures: list) -> np.ndarray:
    from matminer.featurizers.composition import ElementProperty

    return matminer_rows(ElementProperty.from_preset("magpie", impute_nan=True),
                          [s.composition if hasattr(s, "composition") else None for s in structures])


def _sine_coulomb(structures: list) -> np.ndarray:
    """SineCoulombMatrix eigenvalues, sorted (largest first) and zero-padded or cut to :data:`SINE_COULOMB_EIGS`.

    The length is fixed in advance, not fitted on the structures (matminer's ``fit`` sizes the output by the largest
    cell of whatever set it is given, which would make a row depend on the other rows, test rows included).
    """
    from matminer.featurizers.structure import SineCoulombMatrix

    f = SineCoulombMatrix(flatten=False)
    out = np.zeros((len(structures), SINE_COULOMB_EIGS))
    for i, s in enumerate(structures):
        try:
            eigs = np.sort(np.real(np.linalg.eigvals(np.asarray(f.featurize(s)[0], dtype=float))))[::-1]
        except Exception:  # noqa: BLE001 - a failed structure stays a NaN row, counted in the report
            out[i] = np.nan
            continue
        out[i, :min(len(eigs), SINE_COULOMB_EIGS)] = eigs[:SINE_COULOMB_EIGS]
    return out


def _ofm(structures: list) -> np.ndarray:
    from ssl_featurizer.bench.ofm import CellOrbitalFieldMatrix

    return matminer_rows(CellOrbitalFieldMatrix(flatten=True), structures)


def _site_stats(structures: list) -> np.ndarray:
    from matminer.featurizers.structure import SiteStatsFingerprint

    return matminer_rows(SiteStatsFingerprint.from_preset("CrystalNNFingerprint_ops"), structures)


def _symmetry_density(structures: list) -> np.ndarray:
    from matminer.featurizers.base import MultipleFeaturizer
    from matminer.featurizers.structure import DensityFeatures, GlobalSymmetryFeatures

    f = MultipleFeaturizer([GlobalSymmetryFeatures(["spacegroup_num", "crystal_system_int", "is_centrosymmetric",
                                                    "n_symmetry_ops"]), DensityFeatures()])
    f.set_n_jobs(1)
    return matminer_rows(f, structures)


def _soap(structures: list) -> np.ndarray:
    try:
        from dscribe.descriptors import SOAP
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError("the 'soap' descriptor needs dscribe: pip install 'ssl-featurizer[bench]'") from exc
    from pymatgen.core import Element
    from pymatgen.io.ase import AseAtomsAdaptor

    # the species list is the element table, not the species of the set: a row never depends on the other rows
    # (with the mu2 compression the values do not depend on the list, only on the species present)
    species = [el.symbol for el in Element if el.Z <= SOAP_MAX_Z]
    soap = SOAP(species=species, r_cut=6.0, n_max=4, l_max=4, periodic=True, average="inner",
                compression={"mode": "mu2"})
    out = np.full((len(structures), soap.get_number_of_features()), np.nan)
    for i, s in enumerate(structures):
        try:
            out[i] = soap.create(AseAtomsAdaptor.get_atoms(s))
        except Exception:  # noqa: BLE001, S112 - a failed structure stays a NaN row, counted in the report
            continue
    return out


def _site_matminer(featurizer: Any, pairs: list) -> np.ndarray:
    return matminer_rows(featurizer, [(s, int(i)) for s, i in pairs])


def _crystalnn_site(pairs: list) -> np.ndarray:
    from matminer.featurizers.site import CrystalNNFingerprint

    return _site_matminer(CrystalNNFingerprint.from_preset("ops"), pairs)


def _opsite(pairs: list) -> np.ndarray:
    from matminer.featurizers.site import OPSiteFingerprint

    return _site_matminer(OPSiteFingerprint(), pairs)


def _element_site(pairs: list) -> np.ndarray:
    from matminer.featurizers.composition import ElementProperty

    # a (possibly partially occupied) site's element fractions
    return matminer_rows(ElementProperty.from_preset("magpie", impute_nan=True),
                          [s[int(i)].species.element_composition for s, i in pairs])


def _chgnet_features(structures: list, key: str) -> list[np.ndarray | None]:
    """CHGNet's ``crystal_fea`` or ``atom_fea`` per structure (None where CHGNet cannot take the structure)."""
    try:
        from chgnet.model import CHGNet
    except ImportError as exc:
        raise ImportError("the 'chgnet' descriptors need CHGNet: pip install 'ssl-featurizer[peer]'") from exc
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its version and device on load
        model = CHGNet.load(use_device="cpu", verbose=False)
    out: list[np.ndarray | None] = []
    for s in structures:
        try:
            pred = model.predict_structure(s, task="e", return_crystal_feas=key == "crystal_fea",
                                           return_atom_feas=key == "atom_fea")
            out.append(np.asarray(pred[key], dtype=float))
        except Exception:  # noqa: BLE001 - e.g. a partially occupied or isolated-atom structure: a NaN row
            out.append(None)
    return out


def _chgnet(structures: list) -> np.ndarray:
    feats = _chgnet_features(structures, "crystal_fea")
    width = next((f.shape[-1] for f in feats if f is not None), 64)
    return np.array([np.full(width, np.nan) if f is None else f.ravel() for f in feats])


def _chgnet_site(pairs: list) -> np.ndarray:
    order = list({id(s): s for s, _ in pairs}.values())  # each structure once, whatever its number of sites
    feats = dict(zip((id(s) for s in order), _chgnet_features(order, "atom_fea")))
    width = next((f.shape[-1] for f in feats.values() if f is not None), 64)
    return np.array([np.full(width, np.nan) if feats[id(s)] is None else feats[id(s)][int(i)] for s, i in pairs])


#: the hand-built descriptors by name: each maps a list of inputs (structures, or (structure, site) pairs for the
#: site-level ones) to a float matrix with a NaN row for each input it could not describe
HANDBUILT: dict[str, Callable[[list], np.ndarray]] = {
    "magpie": _magpie, "sine_coulomb": _sine_coulomb, "ofm": _ofm, "site_stats_crystalnn": _site_stats,
    "symmetry_density": _symmetry_density, "soap": _soap, "chgnet": _chgnet,
    "crystalnn_site": _crystalnn_site, "opsite": _opsite, "element_site": _element_site, "chgnet_site": _chgnet_site,
}


def _ssl(spec: str, inputs: list, level: str, model: str) -> np.ndarray:
    from ssl_featurizer.featurizers.base import FeaturizationWarning
    from ssl_featurizer.featurizers.site import SSLSiteFeaturizer
    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer
    from ssl_featurizer.pooling import parse_pooling

    parts = spec.split(":")
    layers = parts[1] if len(parts) > 1 else "01"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeaturizationWarning)
        if parts[0] == "ssl_site" or level == "site":
            if parts[0] != "ssl_site":
                raise ValueError(f"{spec!r} is structure level; use ssl_site:<layers> for a site task")
            return SSLSiteFeaturizer(model=model, layers=layers, ignore_errors=True).transform(inputs)
        if parts[0] == "ssl_site":
            raise ValueError(f"{spec!r} is site level but the task is structure level")
        pooling = parse_pooling(parts[2]) if len(parts) > 2 else ("mean",)
        return SSLStructureFeaturizer(model=model, layers=layers, pooling=pooling,
                                      ignore_errors=True).transform(inputs)


def uses_ssl(spec: str) -> bool:
    """Whether a (possibly concatenated) spec contains our SSL features (its scores depend on the model weights)."""
    return any(part.split(":")[0] in ("ssl", "ssl_site") for part in spec.split("+"))


def check_spec(spec: str, level: str) -> None:
    """Raise ValueError for an unknown component or one of the wrong level."""
    for part in spec.split("+"):
        base = part.split(":")[0]
        if base in ("ssl", "ssl_site"):
            if (base == "ssl_site") != (level == "site"):
                raise ValueError(f"descriptor {part!r} does not fit a {level}-level task")
        elif base not in HANDBUILT:
            raise ValueError(f"unknown descriptor {part!r}; known: ssl:<layers>[:<pooling>], ssl_site:<layers>, "
                             f"{', '.join(HANDBUILT)}")
        elif (base in SITE_LEVEL) != (level == "site"):
            raise ValueError(f"descriptor {part!r} does not fit a {level}-level task")


def compute(spec: str, task: Task, cache_dir: str | Path | None = None, model: str = "default") -> tuple[np.ndarray, float]:
    """Features of ``task`` for a (possibly concatenated) descriptor spec, and seconds per input.

    Returns:
        ``(X, seconds_per_input)``; X has one row per task row (NaN rows where a featurizer failed).
    """
    check_spec(spec, task.level)
    blocks, seconds = [], 0.0
    for part in spec.split("+"):
        x, s = _compute_one(part, task, cache_dir, model)
        blocks.append(x)
        seconds += s
    return np.hstack(blocks), seconds


def _cache_path(cache_dir: str | Path, task: Task, part: str, key: str) -> Path:
    digest = hashlib.sha256(f"{task.fingerprint()}|{key}".encode()).hexdigest()[:24]
    return Path(cache_dir) / f"{part.replace(':', '_')}-{digest}.npz"


def _cached(cache_dir: str | Path, task: Task, part: str, key: str) -> tuple[np.ndarray, float] | None:
    """Cached features of ``task``, or the rows of the task it was drawn from (``Task.subset``), if cached."""
    path = _cache_path(cache_dir, task, part, key)
    if path.exists():
        cached = np.load(path)
        return cached["X"], float(cached["seconds"])
    if task.parent is not None and part.split(":")[0] not in SET_DEPENDENT:
        parent, rows = task.parent
        found = _cached(cache_dir, parent, part, key)
        if found is not None:
            return found[0][rows], found[1]
    return None


def _compute_one(part: str, task: Task, cache_dir: str | Path | None, model: str) -> tuple[np.ndarray, float]:
    key = f"{part}@rev{REVISIONS[part]}" if part in REVISIONS else part  # a new definition is a new cache entry
    if part.startswith("ssl"):
        from ssl_featurizer.models.registry import load_model

        loaded = load_model(model)
        key = f"{part}@{loaded.sha256[:16]}"
        every = "".join(str(k) for k in range(loaded.n_layers + 1))
        layers = part.split(":")[1] if ":" in part else ""
        if cache_dir is not None and part.startswith("ssl_site:") and layers.isdigit() and layers != every:
            # a site's embedding is always computed for every layer (one pass) and then sliced: so take the
            # columns of the cached all-layer features (identical values, identical cost per input)
            x, seconds = _compute_one(f"ssl_site:{every}", task, cache_dir, model)
            offsets = np.concatenate([[0], np.cumsum(loaded.layer_widths)])
            return x[:, np.concatenate([np.arange(offsets[int(c)], offsets[int(c) + 1]) for c in layers])], seconds
    if part.startswith("chgnet"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            key = f"{part}@chgnet-{version('chgnet')}"  # its weights ship with (and change with) the package
        except PackageNotFoundError as exc:
            raise ImportError("the 'chgnet' descriptors need CHGNet: pip install 'ssl-featurizer[peer]'") from exc
    path = None
    if cache_dir is not None:
        found = _cached(cache_dir, task, part, key)
        if found is not None:
            return found
        path = _cache_path(cache_dir, task, part, key)

    def featurize(inputs: list) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. CrystalNN's radius notices
            return _ssl(part, inputs, task.level, model) if part.startswith("ssl") else HANDBUILT[part](inputs)

    featurize(task.inputs[:1])  # warm-up (imports, lazy tables): timings are steady-state per input
    if path is not None and part.split(":")[0] not in SET_DEPENDENT and len(task) > CHUNK:
        x, seconds = _chunked(featurize, task.inputs, path)
    else:
        t0 = time.perf_counter()
        x = featurize(task.inputs)
        seconds = (time.perf_counter() - t0) / max(len(task), 1)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, X=x, seconds=seconds)
        for done in path.parent.glob(f"{path.stem}.chunk*.npz"):
            done.unlink()
    return x, seconds


def _chunked(featurize: Callable[[list], np.ndarray], inputs: list, path: Path) -> tuple[np.ndarray, float]:
    """Features of ``inputs`` in chunks of :data:`CHUNK`, each cached beside ``path`` (a rerun skips finished ones).

    Only for descriptors whose rows do not depend on the other inputs (not :data:`SET_DEPENDENT`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks, seconds = [], 0.0
    for k, start in enumerate(range(0, len(inputs), CHUNK)):
        chunk = path.parent / f"{path.stem}.chunk{k:04d}-{CHUNK}.npz"
        if chunk.exists():
            cached = np.load(chunk)
            x, s = cached["X"], float(cached["seconds"])
        else:
            t0 = time.perf_counter()
            x = featurize(inputs[start:start + CHUNK])
            s = time.perf_counter() - t0
            np.savez_compressed(chunk, X=x, seconds=s)
        blocks.append(x)
        seconds += s
    return np.vstack(blocks), seconds / max(len(inputs), 1)
