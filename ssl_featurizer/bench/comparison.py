"""Compare descriptor families on any labelled structures: the benchmark's protocol as one call.

:func:`compare` is what the project's headline (``studies/verdicts.py``) runs, offered for a user's own data:

1. each family's menu of configurations (descriptor variant × regressor) is declared in code
   (:mod:`ssl_featurizer.bench.families`) and printed before anything is computed, with a cost estimate (per
   family: structures × seconds per structure measured on a small sample);
2. outer splits are repeated k-fold (site tasks grouped by structure, so a structure's sites never sit on both
   sides); per split, each family's configuration is chosen by inner cross-validation on the training rows only
   (:mod:`ssl_featurizer.bench.selection`), refitted on them and scored once on the test rows;
3. every pair of families is compared by the corrected resampled t-test on the per-split differences
   (:mod:`ssl_featurizer.bench.stats`); the p-values of all pairs form one family of tests, adjusted by
   Holm–Bonferroni; "A wins" needs an adjusted p < 0.05 and a lower mean MAE, anything else is a tie.

The same functions score and compare the headline's families (:func:`run_family`, :func:`paired_comparison`,
:func:`decide`), so the product and the published verdicts are one mechanism.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_featurizer.bench.tasks import Task

#: the families :func:`compare` runs unless told otherwise (``authors`` needs the checkpoints' folder)
DEFAULT_FAMILIES = ("ssl", "handbuilt", "peer")
#: structures of the sample whose featurization time gives the cost estimate
ESTIMATE_SAMPLE = 8
INCOMPLETE = "no verdict (incomplete menu)"


def menu_id(variants: Sequence[str], regressors: Sequence[str], model: str) -> str:
    """Identity of a family's menu on a task: results are reused only for the same variants, regressors, model and
    descriptor definitions (a descriptor whose definition changed, ``descriptors.REVISIONS``, gives a new id)."""
    from ssl_featurizer.bench.descriptors import REVISIONS

    key: list[Any] = [list(variants), list(regressors), model]
    revised = {d: r for d, r in REVISIONS.items() if any(d in v.split("+") for v in variants)}
    if revised:
        key.append(revised)
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]


def run_family(task: Task, family: str, menu: Any, split_list: Sequence[tuple[str, np.ndarray, np.ndarray]],
               regressors: Sequence[str], model: str = "", missing: Sequence[str] = (), out: str | Path | None = None,
               predictions: bool = False, log: Callable[[str], None] | None = print,
               on_split: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score one family on every outer split (nested choice on training rows), resuming from ``out``.

    Args:
        task: the task.
        family: the family's name (a column of the rows).
        menu: the family's :class:`~ssl_featurizer.bench.selection.Menu`.
        split_list: ``(name, train, test)`` outer splits.
        regressors: the regressor menu.
        model: the model the family's features came from ('' for none), recorded per row.
        missing: declared variants that could not be built (an incomplete menu), recorded per row.
        out: folder of ``<family>.csv`` (one row per split: the chosen configuration and its scores),
            ``<family>__inner.csv`` (every configuration's inner MAE) and, with ``predictions``,
            ``<family>__predictions.csv``; splits already there for the same :func:`menu_id` are not rerun.
        predictions: also keep the chosen configuration's test predictions.
        log: where one line per split goes (None: nowhere).
        on_split: called with the split's name after each split (e.g. a progress bar's update).

    Returns:
        ``(rows, predictions)``: the family's rows of the current menu, one per split of ``split_list`` (in split
        order), and with ``predictions`` one row per (split, test row): ``split``, ``row``, ``y``, ``prediction``
        (otherwise an empty frame).
    """
    from ssl_featurizer.bench.selection import select_on_splits, selected

    mid = menu_id(list(menu), regressors, model)
    folder = None if out is None else Path(out)

    def stored(suffix: str) -> pd.DataFrame:
        path = None if folder is None else folder / f"{family}{suffix}.csv"
        frame = pd.read_csv(path) if path is not None and path.exists() else pd.DataFrame(columns=["menu_id", "split"])
        for text in ("model", "missing", "best_params"):  # empty text is read back as NaN
            if text in frame.columns:
                frame[text] = frame[text].fillna("")
        return frame[frame.menu_id == mid]

    rows, inner, preds = stored(""), stored("__inner"), stored("__predictions")
    done = set(rows.split)
    if predictions:
        done &= set(preds.split)
    todo = [split for split in split_list if split[0] not in done]
    rows = rows[~rows.split.isin([s[0] for s in todo])]
    t1 = time.perf_counter()
    for name, tr, te, scored in select_on_splits(menu, task, todo, regressors, predictions=predictions):
        chosen = selected(scored)
        new = {"task": task.name, "family": family, "model": model, "menu_id": mid, "split": name,
               "spec": chosen["spec"], "regressor": chosen["regressor"], "inner_mae": chosen["inner_mae"],
               "test_mae": chosen["test_mae"], "rmse": chosen["rmse"], "r2": chosen["r2"],
               "best_params": chosen["best_params"], "n_train": len(tr), "n_test": len(te),
               "n_variants": len(menu), "n_regressors": len(regressors), "missing": " | ".join(missing),
               "seconds": round(time.perf_counter() - t1, 1)}
        rows = pd.concat([rows, pd.DataFrame([new])], ignore_index=True)
        inner = pd.concat([inner, pd.DataFrame([{"menu_id": mid, "split": name, "spec": r["spec"],
                                                 "regressor": r["regressor"], "inner_mae": r["inner_mae"],
                                                 "selected": r["selected"]} for r in scored])], ignore_index=True)
        if predictions:
            preds = pd.concat([preds[preds.split != name], pd.DataFrame(
                {"menu_id": mid, "split": name, "row": te, "y": task.y[te], "prediction": chosen["predictions"]})],
                ignore_index=True)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            rows.to_csv(folder / f"{family}.csv", index=False)
            inner.to_csv(folder / f"{family}__inner.csv", index=False)
            if predictions:
                preds.to_csv(folder / f"{family}__predictions.csv", index=False)
        if log is not None:
            log(f"  {task.name} {family} {name}: {new['spec']} / {new['regressor']} test MAE {new['test_mae']:.4g} "
                f"({new['seconds']:.0f} s)")
        if on_split is not None:
            on_split(name)
        t1 = time.perf_counter()  # the next split's selection starts now
    order = {s[0]: k for k, s in enumerate(split_list)}
    rows = rows[rows.split.isin(order)].sort_values("split", key=lambda c: c.map(order)).reset_index(drop=True)
    preds = preds[preds.split.isin(order)].reset_index(drop=True) if predictions else pd.DataFrame()
    return rows, preds


def paired_comparison(results: pd.DataFrame, task: str, a: str, b: str, n_splits: int) -> dict[str, Any] | None:
    """Paired comparison of families ``a`` and ``b`` on ``task`` (None unless both ran every split).

    Returns:
        ``diff`` (mean of A − B over the common splits), ``diff_std``, ``t``, ``p`` (corrected resampled t-test,
        unadjusted), ``mean_a``, ``mean_b``, ``n_splits`` and ``complete`` (both menus built in full). The verdict
        is :func:`decide`'s, after the adjustment over every comparison made.
    """
    from ssl_featurizer.bench.stats import corrected_ttest

    block = results[results.task == task]
    per = {f: block[block.family == f].set_index("split") for f in (a, b)}
    if any(len(p) < n_splits for p in per.values()):
        return None
    common = per[a].index.intersection(per[b].index)
    diff = per[a].loc[common, "test_mae"] - per[b].loc[common, "test_mae"]
    t, p = corrected_ttest(diff, per[a].loc[common, "n_train"].mean(), per[a].loc[common, "n_test"].mean())
    complete = all(not isinstance(m, str) or not m for m in (per[a].missing.iloc[0], per[b].missing.iloc[0]))
    return {"task": task, "a": a, "b": b, "diff": float(diff.mean()), "diff_std": float(diff.std()), "t": t, "p": p,
            "mean_a": float(per[a].loc[common, "test_mae"].mean()),
            "mean_b": float(per[b].loc[common, "test_mae"].mean()), "n_splits": len(common), "complete": complete}


def decide(comparisons: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm-adjust the p-values of ``comparisons`` as one family of tests and give each its verdict.

    Every comparison with a p-value is a test of the family (those of incomplete menus too, which only makes the
    adjustment stricter). Adds ``p_holm``, ``family_size`` and ``verdict``: ``"<A> wins"`` when A's mean MAE is
    lower and the adjusted p < 0.05 (likewise B), ``"tie"`` otherwise, ``"no verdict (incomplete menu)"`` when a
    menu was not built in full.
    """
    from ssl_featurizer.bench.stats import holm, verdict

    found = [dict(c) for c in comparisons]
    adjusted = holm([c["p"] for c in found])
    for c, p_holm in zip(found, adjusted):
        c["p_holm"] = float(p_holm)
        c["family_size"] = len(found)
        c["verdict"] = (verdict(c["a"], c["mean_a"], c["b"], c["mean_b"], p_holm) if c["complete"]
                        else INCOMPLETE)
    return found


def mean_baseline(task: Task, split_list: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The MAE of predicting the training rows' mean target, per split (the floor every family must beat)."""
    return pd.DataFrame([{"split": name, "test_mae": float(np.mean(np.abs(task.y[te] - task.y[tr].mean())))}
                         for name, tr, te in split_list])


@dataclass
class ComparisonReport:
    """What :func:`compare` found.

    Attributes:
        task: the task compared on (name, level, rows, failures).
        menus: ``{family: declared variants}`` as run.
        regressors: the regressor menu (the same for every family).
        notes: what was left out and why (a family whose encoder is not installed, a slow descriptor not opted in).
        per_split: one row per (family, split): the chosen configuration, its inner and test MAE.
        comparisons: one row per pair of families: paired difference, t, raw and Holm-adjusted p, verdict.
        predictions: per (family, split, test row): target and the chosen configuration's prediction.
        baseline: the mean predictor's test MAE per split.
        estimate: ``{family: estimated featurization seconds}`` from the sample.
    """

    task: Task
    menus: dict[str, list[str]]
    regressors: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    per_split: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    baseline: pd.DataFrame = field(default_factory=pd.DataFrame)
    estimate: dict[str, float] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per family: mean ± std test MAE over splits, splits, menu size and the configuration chosen most often."""
        rows = []
        for family, f in self.per_split.groupby("family", sort=False):
            picks = (f.spec + " / " + f.regressor).value_counts()
            rows.append({"family": family, "model": f.model.iloc[0] if isinstance(f.model.iloc[0], str) else "",
                         "mae_mean": f.test_mae.mean(), "mae_std": f.test_mae.std(), "splits": len(f),
                         "menu": f"{int(f.n_variants.iloc[0])} variants × {int(f.n_regressors.iloc[0])} regressors",
                         "most_chosen": f"{picks.index[0]} ({picks.iloc[0]}/{len(f)})"})
        if len(self.baseline):
            rows.append({"family": "mean baseline", "model": "", "mae_mean": self.baseline.test_mae.mean(),
                         "mae_std": self.baseline.test_mae.std(), "splits": len(self.baseline),
                         "menu": "the training rows' mean", "most_chosen": ""})
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        """The report as Markdown: menus, per-family MAE, choices per split, the pairwise verdicts."""
        from ssl_featurizer.bench.stats import ALPHA

        t = self.task
        n = self.per_split.split.nunique() if len(self.per_split) else 0
        lines = [f"# {t.name}: {len(t):,} {'sites' if t.level == 'site' else 'structures'}"
                 + (f" ({len(t.failures)} source rows left out, listed in failures.csv)" if t.failures else ""), "",
                 f"{n} outer splits" + (" grouped by structure" if t.groups is not None else "")
                 + "; per split each family's configuration is chosen by 3-fold inner cross-validation on the "
                 "training rows only, then refitted and scored once on the test rows.", ""]
        lines += [*(f"- {note}" for note in self.notes), ""] if self.notes else []
        lines += ["| family | model | menu | test MAE (mean ± std) | splits | chosen most often |",
                  "|---|---|---|---|---|---|"]
        for r in self.summary().to_dict("records"):
            lines.append(f"| {r['family']} | {r['model'] or '—'} | {r['menu']} | {r['mae_mean']:.4g} ± "
                         f"{r['mae_std']:.2g} | {r['splits']} | {r['most_chosen'] or '—'} |")
        size = int(self.comparisons.family_size.iloc[0]) if len(self.comparisons) else 0
        lines += ["", (f"Pairwise comparisons (A − B, per-split differences; corrected resampled t-test; Holm–"
                  f"Bonferroni over these {size} comparisons; a win needs adjusted p < {ALPHA} and a lower mean "
                  "MAE):"), "", "| A − B | difference (mean ± std) | p | adjusted p | verdict |", "|---|---|---|---|---|"]
        for c in self.comparisons.to_dict("records"):
            lines.append(f"| {c['a']} − {c['b']} | {c['diff']:+.4g} ± {c['diff_std']:.2g} | {c['p']:.3g} | "
                         f"{c['p_holm']:.3g} | {c['verdict']} |")
        lines += ["", "Chosen configuration per split:", "", "| family | " + " | ".join(
            dict.fromkeys(self.per_split.split)) + " |", "|---" * (1 + n) + "|"]
        for family, f in self.per_split.groupby("family", sort=False):
            lines.append(f"| {family} | " + " | ".join(f"{s} / {r}" for s, r in zip(f.spec, f.regressor)) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out: str | Path) -> list[Path]:
        """``report.md``, ``per_split.csv``, ``comparisons.csv``, ``report.json`` (summary, comparisons, menus),
        ``failures.csv`` (if any), ``mae_per_split.png`` and ``parity.png`` in ``out``; returns the paths."""
        from ssl_featurizer.bench.report import parity_plot, per_split_lines

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "report.md", out / "per_split.csv", out / "comparisons.csv", out / "report.json"]
        files[0].write_text(self.markdown())
        self.per_split.to_csv(files[1], index=False)
        self.comparisons.to_csv(files[2], index=False)
        files[3].write_text(json.dumps({
            "task": self.task.name, "rows": len(self.task), "level": self.task.level, "notes": self.notes,
            "menus": self.menus, "regressors": list(self.regressors), "estimate_seconds": self.estimate,
            "summary": self.summary().to_dict("records"), "comparisons": self.comparisons.to_dict("records")},
            indent=1, default=float))
        if self.task.failures:
            files.append(out / "failures.csv")
            pd.DataFrame(self.task.failures).to_csv(files[-1], index=False)
        files.append(per_split_lines(self.per_split, self.baseline, out / "mae_per_split.png"))
        if len(self.predictions):
            files.append(parity_plot(self.predictions, out / "parity.png", self.task.unit))
        return files


def _structure_key(s: Any) -> str:
    """A content hash of a structure (the site task's group: a structure's sites stay on one side of a split)."""
    h = hashlib.sha256(np.ascontiguousarray(s.lattice.matrix).tobytes())
    h.update(np.ascontiguousarray(s.frac_coords).tobytes())
    h.update(" ".join(str(site.species) for site in s).encode())
    return h.hexdigest()[:16]


def task_from_frame(df: pd.DataFrame, structure: str = "structure", target: str = "y", name: str = "data",
                    site_index: str | None = None, group: str | None = None,
                    ids: str | None = None) -> Task:
    """A :class:`Task` from a DataFrame whose ``structure`` column holds Structures, ``Structure.as_dict()`` dicts
    or their JSON text (decoded strictly: :func:`ssl_featurizer.readers.structure_from_object`).

    Rows whose structure does not decode, or whose target is not a finite number, are left out and listed in
    :attr:`Task.failures`. With ``site_index`` the task is site level, grouped by ``group`` (default: by structure).
    """
    from ssl_featurizer.readers import structure_from_object

    for col in (structure, target, site_index, group, ids):
        if col is not None and col not in df.columns:
            raise ValueError(f"no column {col!r}; the columns are {list(df.columns)}")
    inputs, y, groups, failures = [], [], [], []
    for k, (label, row) in enumerate(df.iterrows()):
        key = str(row[ids]) if ids else str(label)
        s, reason = structure_from_object(row[structure])
        value = pd.to_numeric(pd.Series([row[target]]), errors="coerce").iloc[0]
        index = None
        if s is not None and site_index is not None:
            index = pd.to_numeric(pd.Series([row[site_index]]), errors="coerce").iloc[0]
            if not (np.isfinite(index) and float(index).is_integer() and 0 <= index < len(s)):
                reason, s = f"site index {row[site_index]!r} is not a site of a structure of {len(s)} sites", None
        if s is None:
            failures.append({"id": key, "site_index": None, "kind": "unreadable structure" if index is None
                             else "bad site index", "reason": reason})
            continue
        if not np.isfinite(value):
            failures.append({"id": key, "site_index": None, "kind": "bad target",
                             "reason": f"target {row[target]!r} is not a finite number"})
            continue
        inputs.append(s if site_index is None else (s, int(index)))
        y.append(float(value))
        if site_index is not None:
            groups.append(str(row[group]) if group else _structure_key(s))
        del k
    if not inputs:
        raise ValueError(f"no usable row: {len(failures)} rows left out"
                         + (f", e.g. {failures[0]['id']}: {failures[0]['reason']}" if failures else ""))
    notes = [f"{len(failures)} source rows left out (failures)"] if failures else []
    return Task(name, inputs, np.asarray(y), "structure" if site_index is None else "site",
                None if site_index is None else np.asarray(groups), unit=target, notes=notes, failures=failures)


def load_table(data: str | Path, target: str | None = None, structure: str = "structure",
               labels: str | Path | None = None, site_index: str | None = None, group: str | None = None,
               ids: str = "id", limit: int | None = None, seed: int = 0) -> Task:
    """A :class:`Task` from a file or folder of labelled structures, every structure decoded strictly.

    Args:
        data: a matminer JSON dataframe (``.json``/``.json.gz``), a CSV with a column of structure JSON text, a
            JSON-lines file of objects holding a structure and a target, a folder (or file) of structure files
            (CIF, POSCAR, JSON, extxyz) with ``labels``.
        target: the target column (a matminer JSON dataframe with one numeric column: that column).
        structure: the structure column (CSV, JSON lines, JSON dataframe).
        labels: with a folder of structure files, a CSV ``id,<target>``: a structure's id is its path relative to
            the folder, with or without its extension, or its file name without extension.
        site_index: a column of site indices (a site task; not with ``labels``).
        group: the column naming each row's material (site tasks; default: grouped by structure).
        ids: the column naming each row.
        limit: keep a random sample of about ``limit`` rows (:func:`~ssl_featurizer.bench.tasks.sample_rows`:
            whole materials of a site task). For a table (JSON dataframe, CSV, JSON lines) of a structure task, or
            of a site task with ``group``, the sample is drawn among the source rows before decoding, so trying a
            large file on a few rows costs what those rows cost; otherwise every row is decoded and the task is
            then cut (:meth:`Task.subset`). Rows of the sample that cannot be used are in the failures.
        seed: seed of the sample.

    Returns:
        The task; rows that could not be used (unreadable structure, label without structure, structure without
        label, target not a finite number) are in :attr:`Task.failures`.
    """
    from ssl_featurizer.bench.tasks import read_structure_table, sample_rows
    from ssl_featurizer.readers import iter_records, read_labels_csv, read_structure_csv, read_structure_jsonl

    path = Path(data)
    early = limit is not None and (site_index is None or group is not None)  # sample before decoding

    def select(frame: pd.DataFrame) -> np.ndarray:
        if group is not None and group not in frame.columns:
            raise ValueError(f"{path}: no column {group!r}; the columns are {list(frame.columns)}")
        return sample_rows(len(frame), limit, seed, None if group is None else frame[group].astype(str))[0]

    lower = path.name.lower()
    if labels is not None:
        if site_index is not None:
            raise ValueError("--labels gives one target per structure; a site task needs a table with a site column")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        values, failures = read_labels_csv(labels, target, ids)
        inputs, y, seen = [], [], set()
        failures = [{"id": f["id"], "site_index": None, "kind": "bad label", "reason": f["reason"]} for f in failures]
        for record in iter_records(path):
            if record.structure is None:
                if not record.skipped:
                    failures.append({"id": record.id, "site_index": None, "kind": "unreadable structure",
                                     "reason": record.error})
                continue
            rel = Path(record.id.split("#")[0])
            key = next((k for k in (record.id, str(rel.with_suffix("")), rel.stem) if k in values), None)
            if key is None:
                failures.append({"id": record.id, "site_index": None, "kind": "no label",
                                 "reason": f"no row of {Path(labels).name} has this id"})
                continue
            seen.add(key)
            inputs.append(record.structure)
            y.append(values[key])
        failures += [{"id": k, "site_index": None, "kind": "no structure", "reason": f"labelled in {Path(labels).name} "
                      f"but no structure of {path.name} has this id"} for k in values if k not in seen]
        if not inputs:
            raise ValueError(f"no labelled structure in {path} ({len(failures)} rows left out)")
        notes = [f"{len(failures)} source rows left out (failures)"] if failures else []
        task = Task(path.name, inputs, np.asarray(y), unit=target or "target", notes=notes, failures=failures)
        return task if limit is None else task.subset(limit, seed)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (or give --labels with a folder of structure files)")
    json_frame = lower.endswith((".json", ".json.gz"))
    if target is None and not json_frame:
        raise ValueError(f"{path}: name the target column (--target)")
    name = path.name.split(".")[0]
    if json_frame:
        df, failures = read_structure_table(path, structure, select if early else None)
        if target is None:
            numeric = [c for c in df.columns if c not in (structure, ids) and pd.api.types.is_numeric_dtype(df[c])]
            if len(numeric) != 1:
                raise ValueError(f"{path}: name the target column (--target); numeric columns: {numeric}")
            target = numeric[0]
        df = df.assign(**{ids: df[ids] if ids in df.columns else df.index.astype(str)})
    else:
        if lower.endswith((".csv", ".csv.gz")):
            rows, bad = read_structure_csv(path, structure, ids, select if early else None)
        elif lower.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            rows, bad = read_structure_jsonl(path, structure, ids, select if early else None)
        else:
            raise ValueError(f"{path}: give a .json(.gz) matminer dataframe, a .csv(.gz), a .jsonl(.gz), or a folder "
                             "of structure files with --labels")
        df = pd.DataFrame(rows)
        failures = [{"id": f["id"], "site_index": None, "kind": "unreadable structure", "reason": f["reason"]}
                    for f in bad]
        if df.empty:
            raise ValueError(f"{path}: no readable row ({len(failures)} left out"
                             + (f", e.g. {failures[0]['reason']})" if failures else ")"))
    task = task_from_frame(df, structure, target, name, site_index, group, ids)
    task.failures = failures + task.failures
    task.notes = [f"{len(task.failures)} source rows left out (failures)"] if task.failures else []
    if limit is not None and not early:
        return task.subset(limit, seed)
    if early:
        task.notes.append(f"random sample of about {limit} source rows (seed {seed}), drawn before decoding")
    return task


def declared_families(families: Sequence[str], level: str, slow: bool = False,
                      authors: str | Path | None = None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The families :func:`compare` will run, with their declared menus, and notes on what was left out.

    Returns:
        ``({family: {"variants", "handbuilt", "peers"}}, notes)``: ``peer`` runs only the foreign encoders that are
        installed (none installed: the family is left out, with a note); ``handbuilt`` leaves out the slow
        descriptors (:data:`~ssl_featurizer.bench.families.SLOW`) unless ``slow``, and ``soap`` when dscribe is
        missing; ``authors`` needs the checkpoints' folder.
    """
    import importlib.util

    from ssl_featurizer.bench.families import FAMILIES, FAST_HANDBUILT, HANDBUILT, PEERS, SLOW, declared_menu

    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise ValueError(f"unknown families {bad}; choose from {', '.join(FAMILIES)}")
    notes: list[str] = []
    out: dict[str, dict[str, Any]] = {}
    for family in dict.fromkeys(families):
        handbuilt, peers = list(HANDBUILT if slow else FAST_HANDBUILT), dict(PEERS)
        if family == "handbuilt" and level == "structure":
            if not slow:
                notes.append("handbuilt: slow descriptors left out (opt in with slow=True / --slow): "
                             + "; ".join(f"{d} ({cost})" for d, cost in SLOW.items()))
            if importlib.util.find_spec("dscribe") is None:
                handbuilt.remove("soap")
                notes.append("handbuilt: soap left out (needs dscribe: pip install 'ssl-featurizer[bench]')")
        if family == "peer":
            from ssl_featurizer.models.registry import list_foreign_models  # imports torch: only when asked

            installed = set(list_foreign_models())
            peers = {e: ls for e, ls in PEERS.items() if e in installed}
            if not peers:
                notes.append("peer: left out, no foreign encoder installed (pip install 'ssl-featurizer[peer]')")
                continue
            if len(peers) < len(PEERS):
                notes.append(f"peer: {', '.join(sorted(set(PEERS) - set(peers)))} not installed, left out")
        if family == "authors" and authors is None:
            raise ValueError("the authors family needs the folder of Kong et al.'s checkpoints (authors=...)")
        if family == "distilled":
            from ssl_featurizer.bench.families import family_model
            from ssl_featurizer.models.catalog import read_card

            overlap = read_card(family_model(family)).get("label_overlap") or {}
            notes.append(f"distilled: {family_model(family)} is not self-supervised; it learned from "
                         f"{overlap.get('inherited_from', 'a supervised teacher')}, trained on "
                         f"{overlap.get('labels', 'labels')}: targets derived from those labels are partly seen")
        out[family] = {"variants": declared_menu(family, level, handbuilt, peers), "handbuilt": handbuilt,
                       "peers": peers}
    return out, notes


def _estimate(task: Task, families: Mapping[str, dict[str, Any]], model: str,
              authors: str | Path | None) -> dict[str, float]:
    """Featurization seconds per family: ``len(task)`` × the steady-state seconds per input of each descriptor the
    family computes, measured on a sample of :data:`ESTIMATE_SAMPLE` inputs (after one warm-up input, so loading a
    model or a table is not counted per input)."""
    from ssl_featurizer.bench.families import build_menu

    k = min(ESTIMATE_SAMPLE, len(task))
    sample = Task(f"{task.name}[sample]", task.inputs[:k], task.y[:k], task.level,
                  None if task.groups is None else task.groups[:k])
    out = {}
    for family, spec in families.items():
        menu, _ = build_menu(family, sample, None, model=model if family == "ssl" else None, anchors=authors,
                             handbuilt=spec["handbuilt"], peers=spec["peers"])
        out[family] = sum(menu.seconds.values()) * len(task)
    return out


def compare(data: pd.DataFrame | Task, structure: str = "structure", target: str = "y",
            families: Sequence[str] = DEFAULT_FAMILIES, *, site_index: str | None = None, group: str | None = None,
            name: str = "data", model: str = "default", authors: str | Path | None = None, slow: bool = False,
            repeats: int = 2, folds: int = 5, out: str | Path | None = None, cache_dir: str | Path | None = None,
            estimate: bool = True, progress: bool = True, log: Callable[[str], None] | None = print,
            menus: Mapping[str, Sequence[str]] | None = None) -> ComparisonReport:
    """Compare descriptor families on labelled structures (or sites) with the benchmark's protocol.

    Args:
        data: a DataFrame with a structure column and a numeric target column (or a :class:`Task`).
        structure: the structure column: Structures, ``as_dict()`` dicts or their JSON text (decoded strictly).
        target: the target column (a matminer JSON dataframe with one numeric column: that column).
        families: any of ``ssl`` (a shipped model's menu), ``handbuilt`` (matminer), ``peer`` (the foreign encoders
            that are installed), ``authors`` (Kong et al.'s checkpoints; needs ``authors``), ``ssl_inductive``,
            ``distilled`` (the ``ssl`` menu on the shipped distilled model; it inherits its teacher's label overlap,
            stated in the report's notes).
        site_index: a column of site indices: a site task, split by ``group`` (default: by structure).
        group: the column naming each row's material (site tasks).
        name: the task's name in the report.
        model: the model of the ``ssl`` family (a name from ``list_models()`` or a model folder).
        authors: the folder holding the authors' ``cgcnn_60k_pred.pth`` and ``cgcnn_60k_contra.pth``.
        slow: add the slow hand-built descriptors (:data:`~ssl_featurizer.bench.families.SLOW`, cost stated there).
        repeats: repeats of the outer k-fold (ignored when the task has official folds).
        folds: outer folds per repeat.
        out: folder of the results: the report (:meth:`ComparisonReport.write`), per-family CSVs and the feature
            cache; rerunning with the same ``out`` reuses every finished split and every computed feature.
        cache_dir: feature cache (default ``<out>/features``; no ``out``: no cache).
        estimate: measure and print the featurization cost before the run.
        progress: progress bars (featurization per family; selection per family and split, with an ETA).
        log: where the menus, the estimate and one line per split go (None: nowhere).
        menus: ``{family: variants}`` restricting a family's declared menu (for quick runs and tests; the report
            lists the menus as run).

    Returns:
        The :class:`ComparisonReport` (also written to ``out`` when given).
    """
    from tqdm.auto import tqdm

    from ssl_featurizer.bench.families import build_menu, family_model, regressor_menu
    from ssl_featurizer.bench.protocol import repeated_kfold
    from ssl_featurizer.models.catalog import resolve_model

    say = log or (lambda _: None)
    task = data if isinstance(data, Task) else task_from_frame(data, structure, target, name, site_index, group)
    if len(task) < 2 * folds:
        raise ValueError(f"{len(task)} rows are too few for {folds}-fold cross-validation with inner folds")
    chosen, notes = declared_families(families, task.level, slow, authors)
    if menus:
        for family, keep in menus.items():
            if family in chosen:
                unknown = [v for v in keep if v not in chosen[family]["variants"]]
                if unknown:
                    raise ValueError(f"{family}: {unknown} are not in its declared menu")
                chosen[family]["variants"] = list(keep)
                chosen[family]["handbuilt"] = [b for b in chosen[family]["handbuilt"]
                                               if any(b in v.split("+") for v in keep)]
    regressors = regressor_menu(task.y, task.groups is not None)
    # the model name is resolved once here ("default" → "<name>@<version>"); everything below uses that name
    model = ssl_model = resolve_model(model)[0] if "ssl" in chosen else model
    split_list = repeated_kfold(task, repeats, folds)
    if cache_dir is None and out is not None:
        cache_dir = Path(out) / "features"
    say(f"{task.name}: {len(task):,} {task.level}s, {len(split_list)} outer splits"
        + (" grouped by structure" if task.groups is not None else "") + f"; regressors {', '.join(regressors)}")
    for family, spec in chosen.items():
        say(f"  {family}: {len(spec['variants'])} variants: {', '.join(spec['variants'])}")
    for note in notes:
        say(f"  note: {note}")
    report = ComparisonReport(task, {f: list(s["variants"]) for f, s in chosen.items()}, tuple(regressors), notes)
    if estimate:
        report.estimate = _estimate(task, chosen, model, authors)
        say(f"featurization estimate (uncached; {len(task):,} inputs × seconds per input measured on a sample of "
            f"{min(ESTIMATE_SAMPLE, len(task))}): "
            + ", ".join(f"{f} {s / 60:.1f} min" for f, s in report.estimate.items())
            + "; selection and fitting follow, per split (progress bar)")
    built = {}
    for family in tqdm(list(chosen), desc="featurizing", disable=not progress):
        spec = chosen[family]
        menu, missing = build_menu(family, task, cache_dir, model=model if family == "ssl" else None,
                                   anchors=authors, handbuilt=spec["handbuilt"], peers=spec["peers"])
        keep = [v for v in spec["variants"] if v in menu.variants]
        menu.variants = {v: menu.variants[v] for v in keep}
        missing = [m for m in missing if m.split(": ")[0] in spec["variants"]]
        if not len(menu):
            report.notes.append(f"{family}: left out, no variant could be built ({'; '.join(missing[:2])})")
            say(f"  note: {report.notes[-1]}")
            continue
        built[family] = (menu, missing, ssl_model if family == "ssl" else family_model(family))
    if not built:
        raise ValueError(f"no family could be built on {task.name}: " + "; ".join(report.notes))
    frames, preds = [], []
    bar = tqdm(total=len(built) * len(split_list), desc="selection", disable=not progress)
    for family, (menu, missing, fam_model) in built.items():
        bar.set_postfix_str(family)
        rows, pred = run_family(task, family, menu, split_list, regressors, fam_model, missing,
                                None if out is None else Path(out) / "families", predictions=True,
                                log=None if progress else log, on_split=lambda _: bar.update())
        frames.append(rows)
        preds.append(pred.assign(family=family))
        bar.update(len(frames) * len(split_list) - bar.n)  # splits resumed from disk count as done
    bar.close()
    report.per_split = pd.concat(frames, ignore_index=True)
    report.predictions = pd.concat(preds, ignore_index=True)
    report.baseline = mean_baseline(task, split_list)
    found = [c for a, b in combinations(built, 2)
             if (c := paired_comparison(report.per_split, task.name, a, b, len(split_list))) is not None]
    report.comparisons = pd.DataFrame(decide(found))
    if out is not None:
        files = report.write(out)
        say("wrote " + ", ".join(str(f) for f in files))
    return report
