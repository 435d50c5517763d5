"""Model registry, the shipped model card, and the refusal of tampered weights or edited cards."""

from __future__ import annotations

import json
import shutil

import pytest

from ssl_featurizer import ModelError, SSLStructureFeaturizer, list_models, load_model
from ssl_featurizer.models.registry import DEFAULT_MODEL, resolve_model


def test_default_model_is_shipped_with_a_card():
    assert DEFAULT_MODEL in list_models() and resolve_model("default")[0] == DEFAULT_MODEL
    model = load_model("default")
    card = model.card
    assert card["training"]["corpus"] == "structures.jsonl.gz"
    assert card["training"]["epochs"] >= 1.0  # a real pretrained model, never random weights
    assert card["training"]["n_validation"] >= 0.02 * (card["training"]["n_train"] + card["training"]["n_validation"])
    assert card["metrics"]["val_group_acc"] > card["metrics"]["baseline_group_acc"] + 0.2
    assert model.graph_config.cutoff == card["graph"]["cutoff"] == 8.0
    assert not model.encoder.training and not any(p.requires_grad for p in model.encoder.parameters())


def test_tampered_weights_are_refused(tmp_path):
    _, directory = resolve_model("default")
    copy = tmp_path / "model"
    shutil.copytree(directory, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 of model.safetensors is .* but its card says"):
        load_model(str(copy))
    weights.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(ModelError, match="corrupted or was replaced"):
        SSLStructureFeaturizer(model=str(copy)).fit()


def test_expected_fingerprint_mismatch_is_refused():
    with pytest.raises(ModelError, match="differs from the expected"):
        load_model("default", expected_fingerprint="0" * 64)


@pytest.mark.parametrize("edit", ["max_neighbors", "cutoff", "element_table", "width", "no fingerprint"])
def test_an_edited_card_is_refused(tmp_path, edit):
    """The weights alone do not define the descriptor: a card whose graph settings, encoder settings or element
    table were edited after export (weights untouched) is refused, also for a featurizer restored from a pickle."""
    import pickle

    from pymatgen.core import Lattice, Structure

    _, directory = resolve_model("default")
    copy = tmp_path / "model"
    shutil.copytree(directory, copy)
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
    fitted = SSLStructureFeaturizer(model=str(copy)).fit()
    saved = pickle.dumps(fitted)
    card = json.loads((copy / "card.json").read_text())
    if edit == "max_neighbors":
        card["graph"]["max_neighbors"] = 8
    elif edit == "cutoff":
        card["graph"]["cutoff"] = 6.0
    elif edit == "element_table":
        card["element_table"] = "v1" if card.get("element_table") == "v2" else "v2"
        card.pop("element_table_sha256", None)
    elif edit == "width":
        card["encoder"]["message_direction"] = "both"
    else:
        del card["fingerprint"]
    (copy / "card.json").write_text(json.dumps(card))
    from ssl_featurizer.models import registry

    registry._CACHE.pop(str(copy.resolve()), None)
    registry._CACHE.pop(str(copy), None)
    with pytest.raises(ModelError, match="card.json (records another fingerprint|has no fingerprint)"):
        load_model(str(copy))
    with pytest.raises(ModelError):
        pickle.loads(saved).transform([nacl])


def test_shipped_cards_carry_their_fingerprint():
    for name in list_models():
        model = load_model(name)
        assert model.card["fingerprint"] == model.fingerprint and len(model.fingerprint) == 64


def test_card_is_valid_json_with_sha256():
    _, directory = resolve_model("default")
    card = json.loads(directory.joinpath("card.json").read_text())
    assert len(card["weights"]["sha256"]) == 64 and card["weights"]["format"] == "safetensors"


def test_model_readme_and_docs_page_match_the_card():
    from pathlib import Path

    _, directory = resolve_model("default")
    card = json.loads(directory.joinpath("card.json").read_text())
    from ssl_featurizer.training.card import render_card

    assert directory.joinpath("README.md").read_text() == render_card(card)
    docs = Path(__file__).resolve().parents[1] / "docs" / "model_card.md"
    if docs.exists():  # source checkout
        assert render_card(card) in docs.read_text()
