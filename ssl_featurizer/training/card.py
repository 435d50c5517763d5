"""Render a pretrained model's card (``card.json``) as Markdown: the model folder's README and the docs page."""

from __future__ import annotations

from typing import Any


def render_card(card: dict[str, Any]) -> str:
    """Markdown model card from the JSON card written by :func:`ssl_featurizer.training.export.export_run`.

    The recipe and the held-out metrics are described by the run's objectives
    (:mod:`ssl_featurizer.training.objectives`); the data section says only what the card records.
    """
    from ssl_featurizer.training.objectives import ObjectivesConfig

    t, m, g, e = card["training"], card["metrics"], card["graph"], card["encoder"]
    opt = t["optimisation"]
    objectives_config = ObjectivesConfig.from_dict(t["objectives"] if "objectives" in t else t["tasks"])
    objectives = objectives_config.build()
    rows = "\n".join(row for o in objectives for row in o.card_rows(m))
    recipe = "\n".join(f"- {o.describe()}" for o in objectives)
    corpus = f"`{t['corpus']}`" + (f" — {t['corpus_description'].rstrip('.')}" if t.get("corpus_description") else "")
    excluded = (f"\n- Left out of training and held-out data: {t['n_excluded']:,} corpus structures listed in "
                f"`excluded_ids.txt` (sha256 `{t['optimisation']['excluded_ids_sha256'][:12]}…`)."
                if "n_excluded" in t else "")
    init = t.get("init_from")
    start = (f"- Starts from `{init['model']}` (weights sha256 `{init['weights_sha256'][:12]}…`"
             + (f", {init['its_steps']:,} steps" if init.get("its_steps") else "")
             + "): its encoder" + (f" and its {', '.join(init['heads_reused'])} heads" if init["heads_reused"] else "")
             + "; every other head starts at random. Steps and epochs below are the continuation's.\n"
             if init else "")
    counts = card.get("element_counts") or {}
    never = [el for el, n in counts.items() if not n]
    unseen = (f"- Elements in no pretraining structure (their embeddings are untrained; the featurizers warn when a structure "
              f"holds one): {', '.join(never)}.\n" if never else "")
    angular = (f"bond-angle moments ({e['angular_channels']} channels, degrees 0–{e['angular_order']}, "
               "`AngularMoments`) → " if e.get("angular_channels") else "")
    return f"""# Model card: {card['name']} {card['version']}

{card['description']}

**Use**: frozen encoder for descriptors (`SSLStructureFeaturizer(model="{card['name']}@{card['version']}")`,
`SSLSiteFeaturizer`), layers h0..h{e['n_layers']} of width {e['width']}.

## Data
- Corpus: {corpus}. Graph-building failures: {t['corpus_errors']}.
- Training structures: {t['n_train']:,}; held out: {t['n_validation']:,} (split: {t['validation_split']}).{excluded}
{unseen}
## Graph and architecture
- Neighbours within {g['cutoff']} Å, {g['max_neighbors']} nearest plus the whole shell tied with the
  {g['max_neighbors']}th (tolerance {g['tie_tolerance']} Å), no padding; messages neighbour → centre
  (`message_direction="{e['message_direction']}"`).
- Node input: {e['n_node_features']}-column element table `{card.get('element_table', 'v1')}` (docs/graph.md; sha256 `{card['element_table_sha256'][:16]}…`); edges:
  {e['n_gaussians']} Gaussians on {e['gaussian_start']}–{e['gaussian_stop']} Å.
- Encoder: linear embedding, then {e['n_layers']} × ({angular}CGConv → BatchNorm → ReLU, no ReLU after the last), width {e['width']}.

## Recipe
{start}- Input masking: {objectives_config.mask_fraction:.0%} of each structure's atoms (at least 1) have their element
  vector zeroed.
{recipe}
- AdamW, lr {opt['lr']}, weight decay {opt['weight_decay']}, {opt['warmup_steps']} warm-up steps then cosine
  decay; batch {opt['batch_size']} structures; seed {opt['seed']}.

## Training
- Epochs: {t['epochs']:.2f} ({t['global_steps']:,} steps); training time {t['train_seconds'] / 60:.1f} min
  ({t['train_seconds'] / max(t['epochs'], 1e-9) / 60:.1f} min per epoch, {t['structures_per_second']} structures/s)
  on {t['machine']}.

## Held-out pretext metrics
| task | held-out value | baseline |
|---|---|---|
{rows}

## Weights
`{card['weights']['file']}` ({card['weights']['format']}, {card['weights']['bytes']:,} bytes),
sha256 `{card['weights']['sha256']}` — verified on every load.

## Reproduce
```bash
{pretrain_command(card)}
```
""" + "".join(_evaluation(e) for e in [card.get("evaluation"), *card.get("evaluations", [])])


def pretrain_command(card: dict[str, Any], data: str | None = None) -> str:
    """The ``ssl-featurizer pretrain`` command of the card's recipe (objective flags from
    :func:`ssl_featurizer.training.objectives.command_flags`); a recipe setting without a flag is named in a
    trailing comment instead. ``data`` is the corpus path (default: the corpus file the card records, which its
    ``corpus_description`` describes)."""
    from ssl_featurizer.training.objectives import ObjectivesConfig, command_flags

    t, e = card["training"], card["encoder"]
    opt = t["optimisation"]
    objectives = ObjectivesConfig.from_dict(t["objectives"] if "objectives" in t else t["tasks"])
    try:
        flags, note = command_flags(objectives), ""
    except ValueError as exc:
        flags, note = [], f"  # and objectives set from Python: {exc}"
    data = data or card["training"].get("corpus", "CORPUS.jsonl.gz")
    parts = [f"--data {data} --cache-dir CACHE --out RUN",
             (f"--epochs {opt['epochs']} --batch-size {opt['batch_size']} --lr {opt['lr']} "
             f"--warmup-steps {opt['warmup_steps']} --val-fraction {opt['val_fraction']} --seed {opt['seed']}"),
             f"--width {e['width']} --depth {e['n_layers']} --element-table {card.get('element_table', 'v1')} "
             f"--threads {opt['threads']}" + (f" --angular-channels {e['angular_channels']}"
                                              if e.get("angular_channels") else "")]
    if flags:
        parts.append(" ".join(flags))
    if "n_excluded" in t:
        parts.append("--exclude-ids excluded_ids.txt")
    if t.get("init_from"):
        parts.append(f"--init-from {t['init_from']['model']}")
    return ("ssl-featurizer pretrain " + " \\\n    ".join(parts) + note
            + "   # add --resume after an interruption\n"
            + f"ssl-featurizer export --run RUN --cache-dir CACHE --out pretrained/{card['name']}/{card['version']} "
            f"--name {card['name']} --version {card['version']}")


def _evaluation(evaluation: dict[str, str] | None) -> str:
    """The downstream-evaluation section (a Markdown table and its reproduce command), when the card has one."""
    if not evaluation:
        return ""
    return f"""
## {evaluation['title']}

{evaluation['text']}

{evaluation['table']}

Reproduce: `{evaluation['command']}`
"""
