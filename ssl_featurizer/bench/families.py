"""The declared menus of the verdict benchmark: descriptor families and one regressor menu for all of them.

A family is a set of descriptor variants a user could pick from; its configuration (variant × regressor) is chosen
per outer split on training rows only (:mod:`ssl_featurizer.bench.selection`). The menus below are fixed in code
before any run and listed in docs/benchmarks.md (a test checks that the page and this module agree):

- ``ssl``: the registry's default model, layer sets :data:`LAYER_SETS` × poolings :data:`POOLING_MENU`, alone and
  ``+magpie`` (site tasks: ``ssl_site`` layer sets, alone and ``+element_site``);
- ``authors``: Kong et al.'s two released checkpoints (``pred/``, ``contra/``) through the ``kong2023`` preset, the
  same layer sets × poolings, alone and ``+magpie``;
- ``handbuilt``: matminer's :data:`HANDBUILT` descriptors, their ``+magpie`` forms and one combined variant
  :data:`COMBINED` (site tasks: :data:`HANDBUILT_SITE` and their ``+element_site`` forms);
- ``peer``: the frozen supervised foreign encoders :data:`PEERS` (SevenNet-0 and CHGNet, optional extra ``peer``)
  read through the same featurizers as ours, with the same menu where it applies: for each, its layer sets
  :data:`PEERS` (every interaction block, and the last block alone) × poolings :data:`POOLING_MENU`, alone and
  ``+magpie`` (site tasks: ``ssl_site`` of the same layer sets, alone and ``+element_site``); variants are prefixed
  by the encoder (``sevennet-0/ssl:12345``). (Until this menu, ``peer`` was CHGNet's pooled ``crystal_fea``,
  ``chgnet`` and ``chgnet+magpie``, which stay available as descriptors.)
- ``ssl_inductive``: the ``ssl`` menu on the default's inductive control (:func:`inductive_model`: the same recipe
  pretrained on a corpus without any structure of the benchmark tasks), which shows how much of ``ssl``'s result
  comes from having seen the test structures without labels.
- ``distilled`` (for :func:`~ssl_featurizer.bench.comparison.compare` on a user's data; not a family of the verdict
  benchmark, :data:`BENCHMARK_FAMILIES`): the ``ssl`` menu on the shipped distilled model (:data:`DISTILLED_MODEL`,
  its newest version), which learned from SevenNet-0 and inherits its label overlap. Its own gate, Holm-adjusted
  separately, is ``studies/distilled_gate.py`` (docs/pretraining.md).

Regressors (:func:`regressor_menu`): kernel ridge (``krr``) for every task, plus ``krr_log`` when the target is
strictly positive. Gradient boosting (``gbr``) and the log ensemble (``ensemble_log``, whose second member is
boosting) are left out of this menu for cost: one boosting fit of ~1,650 rows took ~7 s on the shared 2-core
machine, so screening it over every variant of the four families (3 inner folds) costs ~22 min per outer split
against ~2.6 min for the whole kernel ridge screening. :func:`~ssl_featurizer.bench.selection.select_and_score`
screens them if they are added here (results on disk are then recomputed: the menu is part of their key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ssl_featurizer.bench.descriptors import compute
from ssl_featurizer.bench.selection import Menu, candidate_features
from ssl_featurizer.bench.tasks import Task

#: the families of the verdict benchmark (``studies/verdicts.py``: one Holm family of tests over their comparisons)
BENCHMARK_FAMILIES = ("ssl", "authors", "handbuilt", "peer", "ssl_inductive")
#: every family :func:`~ssl_featurizer.bench.comparison.compare` can run: the benchmark's and ``distilled``
FAMILIES = (*BENCHMARK_FAMILIES, "distilled")
#: the families that run the ``ssl`` menu on one of this package's models (``authors``: on the authors' checkpoints)
SSL_MENU_FAMILIES = ("ssl", "ssl_inductive", "distilled")
#: the model of the ``distilled`` family (its newest version; learned from SevenNet-0, not self-supervised)
DISTILLED_MODEL = "cgcnn-distilled-mp2025"
LAYER_SETS = ("01", "012", "0123")
#: the pooling combinations the ssl family chooses among (the poolings themselves: ``ssl_featurizer.pooling.POOLINGS``)
POOLING_MENU = (("mean",), ("mean", "std"), ("mean", "density"))
HANDBUILT = ("magpie", "sine_coulomb", "ofm", "site_stats_crystalnn", "symmetry_density", "soap")
HANDBUILT_SITE = ("crystalnn_site", "opsite", "element_site")
#: the released checkpoints: file names in the folder a user gives (``anchors``), as Kong et al. released them
CHECKPOINTS = {"pred": "cgcnn_60k_pred.pth", "contra": "cgcnn_60k_contra.pth"}
#: the ``peer`` family: foreign encoder (``load_model`` name) → its layer sets (every block; the last block alone)
PEERS = {"sevennet-0": ("12345", "5"), "chgnet": ("1234", "4")}
#: hand-built descriptors left out of the fast menu of :func:`~ssl_featurizer.bench.comparison.compare` (opt-in with
#: ``slow=True``): their featurization cost per structure, measured in the exploratory tables of docs/benchmarks.md
#: (one process, the project's 2-core machine, kong2023_formation_energy)
SLOW = {"ofm": "about 1 s per structure", "site_stats_crystalnn": "about 0.4 s per structure"}
FAST_HANDBUILT = tuple(d for d in HANDBUILT if d not in SLOW)
#: the hand-built family's one combined variant (composition, symmetry and density, local environments), offered
#: whenever its parts are (so with ``slow=True`` in :func:`~ssl_featurizer.bench.comparison.compare`)
COMBINED = "site_stats_crystalnn+symmetry_density+magpie"
BASE_REGRESSORS = ("krr",)
POSITIVE_REGRESSORS = ("krr_log",)
#: regressors that ignore the groups of a site task (not offered there)
UNGROUPED = ("ensemble_log",)


def regressor_menu(y: np.ndarray, grouped: bool = False) -> tuple[str, ...]:
    """The one regressor menu (every family): :data:`BASE_REGRESSORS` (+ :data:`POSITIVE_REGRESSORS` if y > 0)."""
    if not np.all(np.asarray(y) > 0):
        return BASE_REGRESSORS
    return tuple(r for r in (*BASE_REGRESSORS, *POSITIVE_REGRESSORS) if not (grouped and r in UNGROUPED))


def _pooled(layer_set: str, pool: tuple[str, ...]) -> str:
    return f"ssl:{layer_set}" + ("" if pool == ("mean",) else f":{'-'.join(pool)}")


def declared_menu(family: str, level: str = "structure", handbuilt: Sequence[str] | None = None,
                  peers: Mapping[str, tuple[str, ...]] | None = None) -> list[str]:
    """The variant specs of ``family`` for a ``level`` task, without computing anything.

    Args:
        family: one of :data:`FAMILIES`.
        level: ``"structure"`` or ``"site"``.
        handbuilt: the structure-level hand-built descriptors (default :data:`HANDBUILT`).
        peers: the foreign encoders and their layer sets (default :data:`PEERS`).
    """
    mag = "element_site" if level == "site" else "magpie"
    handbuilt = HANDBUILT if handbuilt is None else tuple(handbuilt)
    peers = PEERS if peers is None else peers
    if family in (*SSL_MENU_FAMILIES, "authors"):
        base = ([f"ssl_site:{ls}" for ls in LAYER_SETS] if level == "site"
                else [_pooled(ls, p) for ls in LAYER_SETS for p in POOLING_MENU])
        one = [*base, *(f"{b}+{mag}" for b in base)]
        return [f"{c}/{v}" for c in CHECKPOINTS for v in one] if family == "authors" else one
    if family == "handbuilt":
        base = HANDBUILT_SITE if level == "site" else handbuilt
        combined = [COMBINED] if level == "structure" and set(COMBINED.split("+")) <= set(base) else []
        return [*base, *(f"{b}+{mag}" for b in base if b != mag), *combined]
    if family == "peer":
        out = []
        for encoder, layer_sets in peers.items():
            base = ([f"ssl_site:{ls}" for ls in layer_sets] if level == "site"
                    else [_pooled(ls, p) for ls in layer_sets for p in POOLING_MENU])
            out += [f"{encoder}/{v}" for v in (*base, *(f"{b}+{mag}" for b in base))]
        return out
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")


def inductive_model() -> str:
    """The inductive control of the registry's default: ``<name>-inductive@<version>`` (shipped next to it)."""
    from ssl_featurizer.models.registry import resolve_model

    name, _, version = resolve_model("default")[0].partition("@")
    return f"{name}-inductive@{version}"


def family_model(family: str) -> str:
    """The model a family's results are filed under: the default's registry name (``ssl``), its inductive control
    (``ssl_inductive``), the distilled model's (``distilled``), ``kong2023`` (``authors``), or ''."""
    if family in ("ssl", "distilled"):
        from ssl_featurizer.models.registry import resolve_model

        return resolve_model("default" if family == "ssl" else DISTILLED_MODEL)[0]
    if family == "ssl_inductive":
        return inductive_model()
    return "kong2023" if family == "authors" else ""


def build_menu(family: str, task: Task, cache_dir: str | Path | None = None,
               skip: tuple[str, ...] = (), *, model: str | None = None, anchors: str | Path | None = None,
               handbuilt: Sequence[str] | None = None,
               peers: Mapping[str, tuple[str, ...]] | None = None) -> tuple[Menu, list[str]]:
    """Featurize (cached) the declared menu of ``family`` on ``task``.

    Args:
        family: one of :data:`FAMILIES`.
        task: the task.
        cache_dir: feature cache.
        skip: component descriptors not to compute now (e.g. ``("ofm", "site_stats_crystalnn")`` when they are not
            cached yet): variants that need them are left out and reported.
        model: the model of ``ssl`` / ``ssl_inductive`` / ``distilled`` (default :func:`family_model`'s).
        anchors: folder of the authors' checkpoints (needed by ``authors``).
        handbuilt: the structure-level hand-built descriptors (default :data:`HANDBUILT`).
        peers: the foreign encoders of ``peer`` (default :data:`PEERS`).

    Returns:
        ``(menu, missing)``: the variants that could be built, and the declared variants left out, each with why
        (``"ofm: skipped"``, ``"soap: ImportError: ..."``). A non-empty ``missing`` means an incomplete menu.
    """
    cache = None if cache_dir is None else str(cache_dir)
    site = task.level == "site"
    mag = "element_site" if site else "magpie"
    peers = PEERS if peers is None else peers
    declared = declared_menu(family, task.level, handbuilt, peers)
    blocks: dict[str, np.ndarray] = {}
    variants: dict[str, tuple[str, ...]] = {}
    problems: dict[str, str] = {}
    seconds: dict[str, float] = {}

    def component(name: str) -> bool:
        if name in blocks:
            return True
        if name in problems:
            return False
        if name in skip:
            problems[name] = "skipped"
            return False
        try:
            blocks[name], seconds[name] = compute(name, task, cache)
        except ImportError as exc:
            problems[name] = f"{type(exc).__name__}: {exc}"
            return False
        return True

    if family in (*SSL_MENU_FAMILIES, "authors", "peer"):
        if family == "authors":
            if anchors is None:
                raise ValueError("the authors family needs the folder of Kong et al.'s checkpoints (anchors=...)")
            folder = Path(anchors)
            models = {f"{c}/": f"kong2023:{folder / f}" for c, f in CHECKPOINTS.items()}
        else:
            models = {f"{e}/": e for e in peers} if family == "peer" else {"": model or family_model(family)}
        for prefix, name in models.items():
            if family == "authors" and not Path(name.split(":", 1)[1]).is_file():
                problems[prefix.rstrip("/")] = f"checkpoint {name.split(':', 1)[1]} not found"
                continue
            layer_sets = peers[name] if family == "peer" else LAYER_SETS
            try:
                sub = candidate_features(task, name, layer_sets, () if site else POOLING_MENU, cache, prefix)
            except ImportError as exc:  # a foreign encoder whose package is missing (optional extra)
                problems[prefix.rstrip("/")] = f"{type(exc).__name__}: {exc}"
                continue
            blocks.update(sub.blocks)
            variants.update(sub.variants)
            seconds.update(sub.seconds)
            if component(mag):
                variants.update({f"{spec}+{mag}": (*parts, mag) for spec, parts in sub.variants.items()})
        variants = {v: variants[v] for v in declared if v in variants}
    else:
        for spec in declared:
            parts = tuple(spec.split("+"))
            available = [component(p) for p in parts]  # every part, so that every problem is recorded
            if all(available):
                variants[spec] = parts
    missing = [f"{v}: " + "; ".join(f"{k} {why}" for k, why in problems.items()
                                    if k in v.split("+") or v.startswith(f"{k}/"))
               for v in declared if v not in variants]
    return Menu(blocks, variants, seconds), missing
