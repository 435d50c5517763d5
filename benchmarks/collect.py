"""Gather benchmarks/results/*/summary.md and run.json into the results section of docs/benchmarks.md."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"

blocks = []
for run in sorted((ROOT / "benchmarks" / "results").glob("*/run.json")):
    meta = json.loads(run.read_text())
    folder = run.parent.relative_to(ROOT)
    blocks.append(
        f"### {meta['task']}\n\n{meta['n_rows']:,} rows, splits {', '.join(meta['splits'])}, model `{meta['model']}`, "
        f"wall time {meta['wall_seconds'] / 60:.1f} min. {' '.join(meta['notes'])}\n\n"
        + (run.parent / "summary.md").read_text()
        + f"\n![MAE by descriptor](../{folder}/mae.png)\n"
        + (f"![range curve](../{folder}/range.png)\n" if (run.parent / "range.png").exists() else ""))
page = ROOT / "docs" / "benchmarks.md"
text = page.read_text()
head, _, rest = text.partition(START)
_, _, tail = rest.partition(END)
page.write_text(f"{head}{START}\n\n" + "\n".join(blocks) + f"\n{END}{tail}")
print(f"updated {page} with {len(blocks)} task(s)")
