"""Layer embeddings: structures → graphs → one batched, frozen forward pass → per-atom vectors.

This is the one place where inference happens; every featurizer, the CLI and the benchmark call
:func:`embed_structures`. A foreign encoder (:class:`~ssl_featurizer.models.foreign.LayerEncoder`: SevenNet,
CHGNet) builds its own graphs and batches; :func:`embed_structures` hands it the structures chunk by chunk. Failures are captured per input (never dropped), so callers decide
between raising (strict) and a NaN row plus the reason (``ignore_errors``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ssl_featurizer.graph.batch import collate_graphs
from ssl_featurizer.graph.crystal_graph import CrystalGraph, GraphConfig, StructureError, build_graph, implausibility
from ssl_featurizer.layer_sets import parse_layers
from ssl_featurizer.models.foreign import Encoder, LayerEncoder
from ssl_featurizer.models.registry import PretrainedModel

__all__ = ["Embeddings", "batch_slices", "build_graphs", "embed_graphs", "embed_structures", "parse_layers",
           "untrained_elements"]


def _graph_or_error(structure: Any, config: GraphConfig, vectors: bool = False) -> CrystalGraph | str:
    try:
        return build_graph(structure, config, vectors=vectors)
    except StructureError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure of third-party code becomes a reported reason
        return f"{type(exc).__name__}: {exc}"


def build_graphs(structures: Sequence[Any], config: GraphConfig, n_jobs: int = 1,
                 pool: Any = None, vectors: bool = False) -> list[CrystalGraph | str]:
    """Graphs of all inputs (or the reason each failed), in input order.

    With ``n_jobs`` > 1 (or a given ``concurrent.futures`` ``pool``), graphs are built in worker
    processes; only structures and the small :class:`GraphConfig` travel there, never the model.
    ``vectors``: also keep each edge's vector (an encoder that reads bond angles needs them:
    ``model.encoder.needs_vectors``).
    """
    if pool is None and (n_jobs == 1 or len(structures) < 2 * max(n_jobs, 1)):
        return [_graph_or_error(s, config, vectors) for s in structures]
    from functools import partial

    if pool is None:
        with _process_pool(n_jobs) as own:
            return build_graphs(structures, config, n_jobs, own, vectors)
    workers = getattr(pool, "_max_workers", 2)
    return list(pool.map(partial(_graph_or_error, config=config, vectors=vectors), structures,
                         chunksize=max(1, len(structures) // (4 * workers))))


def _process_pool(n_jobs: int):
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(n_jobs if n_jobs > 0 else None)


_IMPORT_PID = os.getpid()


def _guard_forked_process() -> None:
    """Use one torch thread in a process forked after torch started its thread pool.

    matminer's ``MultipleFeaturizer`` (and other ``multiprocessing`` users) fork worker processes;
    OpenMP thread pools do not survive ``fork`` and the first parallel torch op would hang.
    """
    if os.getpid() != _IMPORT_PID and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@dataclass
class Embeddings:
    """Per-input atom embeddings of the selected layers.

    Attributes:
        atoms: for each input, ``(n_atoms, len(layers) * width)`` float32, or None if it failed.
        errors: for each input, None or the reason it failed.
        layers: the layer indices, in column-block order.
        warnings: for each input, None or why its (computed) descriptor may not mean what the user thinks:
            implausible distances (a unit mistake, :func:`~ssl_featurizer.graph.crystal_graph.implausibility`)
            or elements the model never saw in pretraining (:func:`untrained_elements`).
    """

    atoms: list[np.ndarray | None]
    errors: list[str | None]
    layers: tuple[int, ...]
    warnings: list[str | None] | None = None


def untrained_elements(model: PretrainedModel, atomic_numbers: np.ndarray) -> str | None:
    """Why a structure's descriptor is partly untrained (elements absent from the model's pretraining corpus,
    as counted in its card's ``element_counts``), or None."""
    unseen = np.intersect1d(_unseen_numbers(model), atomic_numbers)
    if not unseen.size:
        return None
    from pymatgen.core import Element

    names = ", ".join(Element.from_Z(int(z)).symbol for z in unseen)
    return (f"element(s) {names} occur in no structure of the model's pretraining corpus: their "
            "embeddings were never trained, so the descriptor carries little information about them")


_UNSEEN: dict[str, np.ndarray] = {}


def _unseen_numbers(model: PretrainedModel) -> np.ndarray:
    """Atomic numbers with a zero count in the model card's ``element_counts`` (none when the card has no counts)."""
    found = _UNSEEN.get(model.name)
    if found is None:
        counts = model.card.get("element_counts") or {}
        if counts:
            from pymatgen.core import Element

            found = np.array(sorted(Element(el).Z for el, n in counts.items() if not n), dtype=np.int64)
        else:
            found = np.zeros(0, dtype=np.int64)
        _UNSEEN[model.name] = found
    return found


def _structure_warning(model: PretrainedModel, graph: CrystalGraph) -> str | None:
    notes = [n for n in (implausibility(graph), untrained_elements(model, graph.atomic_numbers)) if n]
    return "; ".join(notes) or None


#: Most edges in one forward pass (unless a single graph has more). Per-edge tensors of ~8k edges
#: (~8 MB in float64) stay in cache: on a 2-core AMD EPYC this is ~1.3-1.6× faster per structure than
#: 256-structure batches (docs/performance.md), and it bounds the memory of batches of large cells.
MAX_BATCH_EDGES = 8192


def batch_slices(n_edges: Sequence[int], batch_size: int, max_edges: int = MAX_BATCH_EDGES) -> list[slice]:
    """Consecutive batches of at most ``batch_size`` graphs and ``max_edges`` edges (at least one graph each)."""
    slices, start, edges = [], 0, 0
    for i, e in enumerate(n_edges):
        if i > start and (i - start >= batch_size or edges + e > max_edges):
            slices.append(slice(start, i))
            start, edges = i, 0
        edges += e
    if start < len(n_edges):
        slices.append(slice(start, len(n_edges)))
    return slices


@torch.no_grad()
def embed_graphs(model: PretrainedModel, graphs: Sequence[CrystalGraph], layers: tuple[int, ...],
                 batch_size: int = 64, max_edges: int = MAX_BATCH_EDGES,
                 on_batch: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Run the frozen encoder on graphs in batches; return each graph's selected-layer embeddings.

    Batches hold at most ``batch_size`` graphs and ``max_edges`` edges; only the convolutions up to
    the deepest requested layer run. Results do not depend on the batching (to ~1e-14).
    ``on_batch``, if given, is called with the number of graphs of each batch once it is done.
    """
    _guard_forked_process()
    out: list[np.ndarray] = []
    for part in batch_slices([g.n_edges for g in graphs], batch_size, max_edges):
        batch = collate_graphs(graphs[part])
        vectors = batch.vector
        if model.encoder.needs_vectors and vectors is None:
            raise ValueError(f"{model.name} reads bond angles: build its graphs with vectors=True")
        hs = model.encoder(model.node_table[batch.z], batch.edge_index, batch.distance.to(model.node_table.dtype),
                           upto=max(layers), vectors=vectors)
        block = torch.cat([hs[i] for i in layers], dim=1).numpy()
        out += np.split(block, batch.ptr[1:-1].numpy())
        if on_batch is not None:
            on_batch(part.stop - part.start)
    return out


def embed_structures(model: PretrainedModel | Encoder, structures: Sequence[Any], layers: tuple[int, ...],
                     batch_size: int = 64, n_jobs: int = 1,
                     progress: bool | Callable[[int], None] = False) -> Embeddings:
    """Atom embeddings of ``structures`` (any objects; invalid ones get a reason instead).

    Args:
        model: a loaded model (:func:`ssl_featurizer.load_model`): a shipped model or a foreign encoder.
        structures: pymatgen Structures.
        layers: validated layer indices (:func:`parse_layers`).
        batch_size: structures per forward pass (memory grows with it; results do not change).
        n_jobs: processes used to build graphs (our models only; a foreign encoder builds its graphs in this
            process).
        progress: show a progress bar that moves after every forward batch, or a function called
            with the number of structures done (embedded or failed) after each batch.
    """
    from contextlib import nullcontext

    atoms: list[np.ndarray | None] = [None] * len(structures)
    errors: list[str | None] = [None] * len(structures)
    notes: list[str | None] = [None] * len(structures)
    chunk = max(batch_size * 16, 1)  # graphs are built and embedded chunk by chunk: bounded memory
    bar = None
    if callable(progress):
        advance = progress
    elif progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(structures), desc="featurizing", unit="structure")
        advance = bar.update
    else:
        advance = None
    if not isinstance(model, PretrainedModel):
        if not isinstance(model, LayerEncoder):
            raise TypeError(f"{type(model).__name__} is neither a shipped model nor a foreign encoder")
        _guard_forked_process()
        for start in range(0, len(structures), chunk):
            part = slice(start, start + chunk)
            atoms[part], errors[part] = model.embed_layers(structures[part], layers, batch_size, advance)
        if bar is not None:
            bar.close()
        return Embeddings(atoms, errors, layers, notes)
    parallel = n_jobs != 1 and len(structures) >= 2 * chunk
    with _process_pool(n_jobs) if parallel else nullcontext() as pool:
        for start in range(0, len(structures), chunk):
            graphs = build_graphs(structures[start:start + chunk], model.graph_config, n_jobs, pool,
                                  model.encoder.needs_vectors)
            ok = [i for i, g in enumerate(graphs) if not isinstance(g, str)]
            embedded = embed_graphs(model, [graphs[i] for i in ok], layers, batch_size,
                                    on_batch=advance) if ok else []
            for i, emb in zip(ok, embedded):
                atoms[start + i] = emb
                notes[start + i] = _structure_warning(model, graphs[i])
            for i, g in enumerate(graphs):
                if isinstance(g, str):
                    errors[start + i] = g
            if advance is not None and len(ok) < len(graphs):
                advance(len(graphs) - len(ok))  # the failed ones, done when their graph was refused
    if bar is not None:
        bar.close()
    return Embeddings(atoms, errors, layers, notes)
