"""Pretrained models shipped with the package: discovery, sha256-verified loading, in-process cache.

Each model lives in ``pretrained/<name>/<version>/`` (installed as ``ssl_featurizer.pretrained``)
with ``model.safetensors`` (tensors only, nothing is unpickled) and ``card.json`` (graph and
architecture settings, training data, metrics and the sha256 of the weights file). A model can
also be loaded from any directory with the same two files.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import torch

from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig
from ssl_featurizer.graph.elements import load_element_table
from ssl_featurizer.models.catalog import (
    CARD,
    DEFAULT_MODEL,
    FOREIGN_MODELS,
    WEIGHTS,
    ModelError,
    list_models,
    resolve_model,
)
from ssl_featurizer.models.foreign import Encoder
from ssl_featurizer.models.kong2023 import PREFIX as KONG2023_PREFIX
from ssl_featurizer.models.kong2023 import load_kong2023
from ssl_featurizer.models.loaded import PretrainedModel, for_inference

__all__ = ["CARD", "DEFAULT_MODEL", "FOREIGN_MODELS", "WEIGHTS", "ModelError", "PretrainedModel",
           "list_foreign_models", "list_models", "load_model", "read_weights", "resolve_model", "save_model"]

_ENCODER_PREFIX = "encoder."


def list_foreign_models(installed: bool = True) -> list[str]:
    """Names of the foreign encoders (usable as ``model=`` like a shipped model).

    Args:
        installed: only those whose package (and checkpoint file) is installed; ``False``: all of them.
    """
    if not installed:
        return list(FOREIGN_MODELS)
    from ssl_featurizer.models import chgnet, sevennet

    return [*sevennet.available(), *chgnet.available()]


def _load_foreign(name: str) -> Encoder:
    if name == "chgnet":
        from ssl_featurizer.models.chgnet import load_chgnet

        return load_chgnet(name)
    from ssl_featurizer.models.sevennet import load_sevennet

    return load_sevennet(name)


_CACHE: dict[str, PretrainedModel | Encoder] = {}
_LOCK = threading.Lock()


def load_model(model: str = "default", expected_fingerprint: str | None = None) -> PretrainedModel | Encoder:
    """Load (once per process) a pretrained encoder, verifying it before use.

    The weights' sha256 must be the one the card records, and the card's :attr:`PretrainedModel.fingerprint`
    (weights, graph settings, encoder settings and element table together) the one recomputed from what was
    loaded: an edited graph setting or element table is refused, not used under the same name.

    Args:
        model: ``"default"``, a registry name (``list_models()``), a model directory,
            ``"kong2023:<path to the authors' .pth>"`` (see :mod:`ssl_featurizer.models.kong2023`), or a foreign
            encoder (``list_foreign_models()``: ``"sevennet-0"``, ``"sevennet-l3i5"``, ``"chgnet"``, ...; optional
            extra ``peer``), which the featurizers use exactly like a shipped model.
        expected_fingerprint: if given, the model must also have this fingerprint (used when a fitted or
            pickled featurizer, or a Dask worker, reloads its model by name: it must describe structures as
            the one it was fitted with).

    Raises:
        ModelError: unknown name, missing files, truncated/corrupted weights, an edited card, or a fingerprint
            other than the expected one; for a foreign encoder whose package is missing,
            :class:`~ssl_featurizer.models.foreign.MissingExtraError` (a ModelError and an ImportError) naming the
            extra to install.
    """
    with _LOCK:
        loaded = _CACHE.get(model)
        if loaded is None and model.startswith(KONG2023_PREFIX):
            loaded = _CACHE[model] = load_kong2023(model)
        if loaded is None and model in FOREIGN_MODELS:
            loaded = _CACHE[model] = _load_foreign(model)
        if loaded is None:
            name, directory = resolve_model(model)
            loaded = _CACHE.get(name) or _load_verified(name, directory)
            _CACHE[model] = _CACHE[name] = loaded
    if expected_fingerprint is not None and loaded.fingerprint != expected_fingerprint:
        raise ModelError(f"model {loaded.name}: fingerprint {loaded.fingerprint[:16]}… differs from the expected "
                         f"{expected_fingerprint[:16]}… (its weights, graph settings or element table changed since "
                         "this object was fitted or saved)")
    return loaded


def read_weights(model: str) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """The card and every tensor (encoder and pretext heads) of a shipped model or model directory, the weights
    file verified against the card's sha256 first; no encoder is built. Pretraining reads a model this way to
    start a run from its weights (``ssl-featurizer pretrain --init-from``).

    Returns:
        ``(name, card, tensors)``: the resolved name (``name@version`` or the directory), the parsed card, and
        the tensors by key (``encoder.*``, ``heads.<objective>.*``).

    Raises:
        ModelError: unknown model, unreadable files, or weights whose sha256 is not the card's.
    """
    name, directory = resolve_model(model)
    return (name, *_read_verified(name, directory))


def _read_verified(name: str, directory: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    try:
        card = json.loads(directory.joinpath(CARD).read_text())
        blob = directory.joinpath(WEIGHTS).read_bytes()
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model {name}: cannot read {CARD}/{WEIGHTS}: {exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card["weights"]["sha256"]:
        raise ModelError(f"model {name}: sha256 of {WEIGHTS} is {digest}, but its card says "
                         f"{card['weights']['sha256']}; the file is corrupted or was replaced")
    try:
        return card, load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:  # pragma: no cover - sha256 catches first
        raise ModelError(f"model {name}: {WEIGHTS} is not a valid safetensors file: {exc}") from exc


def _load_verified(name: str, directory: Any) -> PretrainedModel:
    card, tensors = _read_verified(name, directory)
    try:
        table = load_element_table(card.get("element_table", "v1"))
    except ValueError as exc:
        raise ModelError(f"model {name}: {exc}") from exc
    if card.get("element_table_sha256") not in (None, table.sha256):
        raise ModelError(f"model {name} was trained with another element table "
                         f"(sha256 {card['element_table_sha256']})")
    encoder = CrystalEncoder(EncoderConfig(**card["encoder"]))
    state = {k[len(_ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(_ENCODER_PREFIX)}
    encoder.load_state_dict(state)
    loaded = PretrainedModel(name, card, *for_inference(encoder, torch.from_numpy(table.features)))
    if card.get("fingerprint") != loaded.fingerprint:
        what = ("has no fingerprint (written by an older version: export it again)" if "fingerprint" not in card
                else "records another fingerprint than its weights, graph settings, encoder settings and element "
                     "table give: the card was edited after export")
        raise ModelError(f"model {name}: {CARD} {what}; refused, because it would describe structures other "
                         "than the published model does")
    return loaded


def save_model(directory: str | Path, tensors: dict[str, torch.Tensor], card: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.safetensors`` and ``card.json`` (with the weights' sha256) into ``directory``.

    Encoder tensors must be prefixed ``encoder.``; any other prefix (e.g. ``heads.``) is kept but
    ignored by :func:`load_model`.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    blob = save({k: v.contiguous() for k, v in tensors.items()})
    (directory / WEIGHTS).write_bytes(blob)
    card = {**card, "weights": {"file": WEIGHTS, "sha256": hashlib.sha256(blob).hexdigest(),
                                 "bytes": len(blob), "format": "safetensors"}}
    card.pop("fingerprint", None)
    card["fingerprint"] = _fingerprint_of(card, tensors)
    (directory / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def _fingerprint_of(card: dict[str, Any], tensors: dict[str, torch.Tensor]) -> str:
    """The :attr:`PretrainedModel.fingerprint` of the model a card and its tensors describe."""
    table = load_element_table(card.get("element_table", "v1"))
    encoder = CrystalEncoder(EncoderConfig(**card["encoder"]))
    encoder.load_state_dict({k[len(_ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(_ENCODER_PREFIX)})
    return PretrainedModel("", card, *for_inference(encoder, torch.from_numpy(table.features))).fingerprint
