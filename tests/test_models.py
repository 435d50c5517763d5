"""Model registry, the shipped model card, and sha256 refusal of tampered weights."""

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


def test_expected_sha256_mismatch_is_refused():
    with pytest.raises(ModelError, match="differs from the expected"):
        load_model("default", expected_sha256="0" * 64)


def test_card_is_valid_json_with_sha256():
    _, directory = resolve_model("default")
    card = json.loads(directory.joinpath("card.json").read_text())
    assert len(card["weights"]["sha256"]) == 64 and card["weights"]["format"] == "safetensors"


def test_model_readme_and_docs_page_match_the_card():
    from pathlib import Path

    _, directory = resolve_model("default")
    card = json.loads(directory.joinpath("card.json").read_text())
    from ssl_featurizer.pretrain.card import render_card

    assert directory.joinpath("README.md").read_text() == render_card(card)
    docs = Path(__file__).resolve().parents[1] / "docs" / "model_card.md"
    if docs.exists():  # source checkout
        assert render_card(card) in docs.read_text()
