"""Benchmark outputs: per-split CSV, summary (mean ± std) CSV and Markdown, bar chart, range curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ssl_featurizer.bench.descriptors import uses_ssl
from ssl_featurizer.plotting import pyplot, save_figure


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over splits of MAE, RMSE, R² per (task, descriptor, regressor)."""
    g = results.groupby(["task", "descriptor", "regressor"], sort=False)
    out = g[["mae", "rmse", "r2"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["n_splits"] = g.size()
    out["seconds_per_input"] = g["seconds_per_input"].first()
    out["n_features"] = g["n_features"].first()
    out["n_failed_inputs"] = g["n_failed_inputs"].first()
    return out.reset_index()


def markdown_table(summary: pd.DataFrame) -> str:
    """One Markdown table: rows descriptors, a column per regressor with MAE ± std (best MAE in bold)."""
    lines = []
    for task, block in summary.groupby("task", sort=False):
        regs = list(dict.fromkeys(block["regressor"]))
        lines += [f"**{task}**", "", "| descriptor | features | failed inputs | s / input | "
                  + " | ".join(f"{r} MAE" for r in regs) + " | " + " | ".join(f"{r} R²" for r in regs) + " |",
                  "|---|---|---|---|" + "---|" * (2 * len(regs))]
        best = block.groupby("regressor")["mae_mean"].min()
        for desc, rows in block.groupby("descriptor", sort=False):
            r = rows.set_index("regressor")
            maes = []
            for reg in regs:
                if reg not in r.index:
                    maes.append("—")
                    continue
                cell = f"{r.loc[reg, 'mae_mean']:.4g} ± {r.loc[reg, 'mae_std']:.2g}"
                maes.append(f"**{cell}**" if np.isclose(r.loc[reg, "mae_mean"], best[reg]) else cell)
            r2s = [f"{r.loc[reg, 'r2_mean']:.3f}" if reg in r.index else "—" for reg in regs]
            first = r.iloc[0]
            lines.append(f"| {desc} | {int(first['n_features'])} | {int(first['n_failed_inputs'])} | "
                         f"{first['seconds_per_input']:.2g} | "
                         + " | ".join(maes) + " | " + " | ".join(r2s) + " |")
        lines.append("")
    return "\n".join(lines)


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """Per task: the best SSL-containing descriptor against the best hand-built one.

    "Best" is the (descriptor, regressor) pair with the lowest mean test MAE over splits, within each family
    (a descriptor belongs to the SSL family when any ``+`` part is ``ssl``/``ssl_site``). The paired difference
    (SSL minus hand-built, split by split) is reported as mean ± std; ``verdict`` says whether SSL wins and
    whether the margin exceeds that split-to-split spread.
    """
    rows = []
    for task, block in results.groupby("task", sort=False):
        is_ssl = block["descriptor"].map(uses_ssl)
        means = block.groupby(["descriptor", "regressor"], sort=False)["mae"].mean()
        best = {}
        for family, mask in (("ssl", is_ssl), ("hand", ~is_ssl)):
            fam = means[means.index.get_level_values(0).isin(block.loc[mask, "descriptor"])]
            best[family] = fam.idxmin() if len(fam) else None
        if best["ssl"] is None or best["hand"] is None:
            continue
        per_split = {f: block[(block.descriptor == best[f][0]) & (block.regressor == best[f][1])].set_index("split")
                     ["mae"] for f in best}
        diff = (per_split["ssl"] - per_split["hand"]).dropna()
        win = means[best["ssl"]] < means[best["hand"]]
        clear = (diff.mean() + diff.std() < 0) if win else (diff.mean() - diff.std() > 0)
        rows.append({"task": task, "best_ssl": f"{best['ssl'][0]} ({best['ssl'][1]})", "ssl_mae": means[best["ssl"]],
                     "best_handbuilt": f"{best['hand'][0]} ({best['hand'][1]})", "handbuilt_mae": means[best["hand"]],
                     "paired_diff_mean": diff.mean(), "paired_diff_std": diff.std(),
                     "verdict": ("SSL wins" if win else "hand-built wins") + ("" if clear else ", within noise")})
    return pd.DataFrame(rows)


def headline_markdown(table: pd.DataFrame) -> str:
    """:func:`headline` as a Markdown table, with the count of SSL wins."""
    lines = [("| task | best SSL (regressor) | MAE | best hand-built (regressor) | MAE | SSL − hand-built (paired) "
              "| verdict |"), "|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['task']} | {r['best_ssl']} | {r['ssl_mae']:.4g} | {r['best_handbuilt']} | "
                     f"{r['handbuilt_mae']:.4g} | {r['paired_diff_mean']:+.3g} ± {r['paired_diff_std']:.2g} | "
                     f"{r['verdict']} |")
    wins = int(table["verdict"].str.startswith("SSL").sum())
    lines.append(f"\nSSL (alone or concatenated) has the lower mean MAE on {wins} of {len(table)} tasks.")
    return "\n".join(lines)


def bar_chart(summary: pd.DataFrame, path: str | Path) -> Path:
    """MAE (mean ± std over splits) per descriptor, one group of bars per regressor, one panel per task."""
    plt = pyplot()
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(10, 3.2 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        block = summary[summary["task"] == task]
        descs, regs = list(dict.fromkeys(block["descriptor"])), list(dict.fromkeys(block["regressor"]))
        width = 0.8 / len(regs)
        for k, reg in enumerate(regs):
            r = block[block["regressor"] == reg].set_index("descriptor").reindex(descs)
            ax.bar(np.arange(len(descs)) + k * width, r["mae_mean"], width, yerr=r["mae_std"], capsize=3, label=reg)
        ax.set_xticks(np.arange(len(descs)) + 0.4 - width / 2, descs, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("test MAE")
        ax.set_title(task)
        ax.legend(fontsize=8)
    return save_figure(fig, path, "", dpi=120)


def range_curve(summary: pd.DataFrame, path: str | Path) -> Path | None:
    """Test MAE against the SSL layer set (0, 01, 012, …): the "range" of the descriptor."""
    ssl = summary[summary["descriptor"].str.fullmatch(r"ssl(_site)?:\d+")]  # default (mean) pooling only
    ssl = ssl[ssl["descriptor"].str.split(":").str[1].apply(lambda s: s == "012345"[: len(s)])]
    if ssl.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (task, reg), rows in ssl.groupby(["task", "regressor"], sort=False):
        rows = rows.assign(depth=rows["descriptor"].str.split(":").str[1].str.len()).sort_values("depth")
        ax.errorbar(rows["depth"] - 1, rows["mae_mean"], yerr=rows["mae_std"], marker="o", capsize=3,
                    label=f"{task} / {reg}")
    depth = int(ssl["descriptor"].str.split(":").str[1].str.len().max())
    ax.set_xticks(range(depth), ["0123456789"[: k + 1] for k in range(depth)])
    ax.set_xlabel("layers concatenated (hops of neighbourhood seen)")
    ax.set_ylabel("test MAE")
    ax.legend(fontsize=7)
    return save_figure(fig, path, "range curve: error versus descriptor range", dpi=120)


def per_split_lines(per_split: pd.DataFrame, baseline: pd.DataFrame | None, path: str | Path) -> Path:
    """Test MAE per outer split, one line per family (and the mean baseline, dashed): paired differences at a
    glance (lines that cross are splits where the order flips)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    order = list(dict.fromkeys(per_split["split"]))
    for family, rows in per_split.groupby("family", sort=False):
        r = rows.set_index("split").reindex(order)
        ax.plot(range(len(order)), r["test_mae"], marker="o", label=f"{family} ({r['test_mae'].mean():.3g})")
    if baseline is not None and len(baseline):
        b = baseline.set_index("split").reindex(order)
        ax.plot(range(len(order)), b["test_mae"], ls="--", color="grey", label=f"mean baseline ({b['test_mae'].mean():.3g})")
    ax.set_xticks(range(len(order)), order, rotation=45, fontsize=8)
    ax.set_xlabel("outer split")
    ax.set_ylabel("test MAE of the chosen configuration")
    ax.legend(fontsize=8)
    return save_figure(fig, path, "test MAE per split, configuration chosen on training rows", dpi=120)


def parity_plot(predictions: pd.DataFrame, path: str | Path, unit: str = "") -> Path:
    """Predicted against true target on the test rows of every split, one panel per family (its chosen
    configuration per split)."""
    plt = pyplot()
    families = list(dict.fromkeys(predictions["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.6), squeeze=False)
    lo = float(np.nanmin(predictions[["y", "prediction"]].to_numpy()))
    hi = float(np.nanmax(predictions[["y", "prediction"]].to_numpy()))
    for ax, family in zip(axes[0], families):
        p = predictions[predictions["family"] == family]
        ax.scatter(p["y"], p["prediction"], s=6, alpha=0.4)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        mae = float(np.mean(np.abs(p["y"] - p["prediction"])))
        ax.set_title(f"{family} (MAE {mae:.3g})", fontsize=9)
        ax.set_xlabel(f"true {unit}".strip())
        ax.set_ylabel("predicted")
    return save_figure(fig, path, "parity: each family's chosen configuration, test rows of every split", dpi=120)
