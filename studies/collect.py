"""Regenerate the exploratory tables and figures from studies/results/*/results.csv into docs/benchmarks.md.

These tables pick each family's best (descriptor, regressor) by its mean *test* MAE: exploratory only. The
headline verdicts (configurations chosen on training rows) come from studies/verdicts.py.
"""

import json
from pathlib import Path

import pandas as pd
from common import script_parser
from docs_blocks import write_block

from ssl_featurizer.bench.report import bar_chart, headline, headline_markdown, markdown_table, range_curve, summarise

ROOT = Path(__file__).resolve().parents[1]


def _failed_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows with a failed component: a concatenation fails where any of its parts failed."""
    per = results.groupby("descriptor")["n_failed_inputs"].max()
    combined = results["descriptor"].map(lambda d: max(per.get(p, 0) for p in d.split("+")))
    return results.assign(n_failed_inputs=results["n_failed_inputs"].combine(combined, max))


def main() -> None:
    script_parser(__doc__).parse_args()
    blocks, heads = [], []
    for run in sorted((ROOT / "studies" / "results").glob("*/run.json")):
        if not (run.parent / "results.csv").exists():
            continue  # not a benchmark run (e.g. magnetism_analysis, see docs/magnetism.md)
        meta = json.loads(run.read_text())
        folder = run.parent.relative_to(ROOT)
        results = _failed_rows(pd.read_csv(run.parent / "results.csv"))
        heads.append(headline(results))
        summary = summarise(results)
        used = sorted(set(results.get("weights", pd.Series(dtype=str)).dropna()) - {""})
        weights = ", ".join(f"`{w}`" for w in used) or f"`{meta['model']}`"
        summary.to_csv(run.parent / "summary.csv", index=False)
        (run.parent / "summary.md").write_text(markdown_table(summary))
        bar_chart(summary, run.parent / "mae.png")
        range_curve(summary, run.parent / "range.png")
        blocks.append(
            f"### {meta['task']}\n\n{meta['n_rows']:,} rows, splits {', '.join(meta['splits'])}, model {weights}, "
            f"wall time {meta['wall_seconds'] / 60:.1f} min. {' '.join(meta['notes'])}\n\n"
            + markdown_table(summary)
            + f"\n![MAE by descriptor](../{folder}/mae.png)\n"
            + (f"![range curve](../{folder}/range.png)\n" if (run.parent / "range.png").exists() else ""))
    page = ROOT / "docs" / "benchmarks.md"
    write_block(page, "results", "\n" + "\n".join(blocks))
    write_block(page, "headline", headline_markdown(pd.concat(heads, ignore_index=True)))
    print(f"updated {page} with {len(blocks)} task(s)")


if __name__ == "__main__":
    main()
