"""Render a model card (``card.json``) as Markdown: the model folder's README and the docs page."""

from __future__ import annotations

from typing import Any


def render_card(card: dict[str, Any]) -> str:
    """Markdown model card from the JSON card written by :func:`ssl_featurizer.models.registry.save_model`."""
    t, m, g, e = card["training"], card["metrics"], card["graph"], card["encoder"]
    opt, tasks = t["optimisation"], t["tasks"]
    targets = [name for name in ("group", "period", "element") if tasks.get(f"predict_{name}")]
    rows = "\n".join(
        f"| {name} | {m[f'val_{name}_acc']:.3f} | {m[f'baseline_{name}_acc']:.3f} |"
        for name in ("group", "period", "element") if f"val_{name}_acc" in m and f"baseline_{name}_acc" in m)
    if "val_edge_acc" in m:
        rows += f"\n| edge distance bin (0.2 Å, 41 bins) | {m['val_edge_acc']:.3f} | — |"
    if "val_contrastive_acc" in m:
        rows += (f"\n| contrastive: own supercell view most similar among 256 | {m['val_contrastive_acc']:.3f} |"
                 " 1/256 |")
    contrastive = (f"on (NT-Xent, temperature {tasks['temperature']}, weight {tasks['contrastive_weight']}, between "
                   "the masked cell and its independently masked supercell doubled along the shortest lattice vector)"
                   if tasks.get("contrastive") else "off")
    return f"""# Model card: {card['name']} {card['version']}

{card['description']}

**Use**: frozen encoder for descriptors (`SSLStructureFeaturizer(model="{card['name']}@{card['version']}")`,
`SSLSiteFeaturizer`), layers h0..h{e['n_layers']} of width {e['width']}.

## Data
- Corpus: `{t['corpus']}` — Materials Project structures, database version 2025.02.12 (CC-BY 4.0; cite A. Jain et
  al., APL Materials 1, 011002 (2013), and the topology_databases collection, doi:10.26434/chemrxiv-2024-gsk41).
  Graph-building failures: {t['corpus_errors']}.
- Training structures: {t['n_train']:,}; held out: {t['n_validation']:,} (split: {t['validation_split']}).
- The corpus contains the structures of MP-derived benchmark tasks (unlabeled, transductive overlap); state this
  when reporting downstream results.

## Graph and architecture
- Neighbours within {g['cutoff']} Å, {g['max_neighbors']} nearest plus the whole shell tied with the
  {g['max_neighbors']}th (tolerance {g['tie_tolerance']} Å), no padding; messages neighbour → centre
  (`message_direction="{e['message_direction']}"`).
- Node input: {e['n_node_features']}-column element table `{card.get('element_table', 'v1')}` (docs/graph.md; sha256 `{card['element_table_sha256'][:16]}…`); edges:
  {e['n_gaussians']} Gaussians on {e['gaussian_start']}–{e['gaussian_stop']} Å.
- Encoder: linear embedding, then {e['n_layers']} × (CGConv → BatchNorm → ReLU, no ReLU after the last), width {e['width']}.

## Recipe
- Masked atoms: {tasks['mask_fraction']:.0%} of each structure's atoms (at least 1) zeroed; predict
  {', '.join(targets) or 'nothing'} from the last layer.
- Edge task: {'on' if tasks['predict_edge_bins'] else 'off'} (distance bin of edges touching masked atoms, from
  h_src + h_dst).
- Contrastive task: {contrastive}.
- AdamW, lr {opt['lr']}, weight decay {opt['weight_decay']}, {opt['warmup_steps']} warm-up steps then cosine
  decay; batch {opt['batch_size']} structures; seed {opt['seed']}.

## Training
- Epochs: {t['epochs']:.2f} ({t['global_steps']:,} steps); training time {t['train_seconds'] / 60:.1f} min
  ({t['train_seconds'] / max(t['epochs'], 1e-9) / 60:.1f} min per epoch, {t['structures_per_second']} structures/s)
  on {t['machine']}.

## Held-out masked-atom metrics
| task | accuracy | majority-class baseline |
|---|---|---|
{rows}

## Weights
`{card['weights']['file']}` ({card['weights']['format']}, {card['weights']['bytes']:,} bytes),
sha256 `{card['weights']['sha256']}` — verified on every load.
""" + _evaluation(card.get("evaluation"))


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
