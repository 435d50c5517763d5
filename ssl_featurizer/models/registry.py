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
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig
from ssl_featurizer.graph.elements import load_element_table
from ssl_featurizer.models.foreign import Encoder
from ssl_featurizer.models.kong2023 import PREFIX as KONG2023_PREFIX
from ssl_featurizer.models.kong2023 import load_kong2023
from ssl_featurizer.models.pretrained import ModelError, PretrainedModel, for_inference

WEIGHTS = "model.safetensors"
CARD = "card.json"
#: what ``model="default"`` means: pinned to one version, so that shipping a new version never changes the
#: default silently (the default is chosen by ``benchmarks/choose_default.py``; ``"cgcnn-ssl-mp2025"`` alone
#: means its newest version)
DEFAULT_MODEL = "cgcnn-ssl-mp2025@2.0"
_ENCODER_PREFIX = "encoder."


#: the shipped models in a source checkout (the folder an install maps to ``ssl_featurizer.pretrained``)
_SOURCE_TREE_MODELS = Path(__file__).resolve().parents[2] / "pretrained"


def _pretrained_root():
    """The folder holding ``<name>/<version>/``: the installed ``ssl_featurizer.pretrained`` package, or, when
    Python imports ``ssl_featurizer`` from a source checkout (e.g. run from the repository root, where the
    package has no ``pretrained`` sub-package), the checkout's top-level ``pretrained/`` folder."""
    try:
        return resources.files("ssl_featurizer.pretrained")
    except ModuleNotFoundError:
        if (_SOURCE_TREE_MODELS / "__init__.py").is_file():
            return _SOURCE_TREE_MODELS
        raise ModelError("no shipped models found: ssl_featurizer.pretrained is not installed and this is not a "
                         "source checkout with a pretrained/ folder; reinstall the package (pip install .)") from None


def _version_key(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in v.lstrip("v").split("."))


def list_models() -> list[str]:
    """Names of the shipped models, as ``<name>@<version>`` (usable as ``model=``; ``"default"`` too).

    The foreign encoders (SevenNet, CHGNet) are listed apart, by :func:`list_foreign_models`.
    """
    found = []
    root = _pretrained_root()
    for model_dir in root.iterdir():
        if not model_dir.is_dir():
            continue
        for version_dir in model_dir.iterdir():
            if version_dir.is_dir() and version_dir.joinpath(CARD).is_file():
                found.append(f"{model_dir.name}@{version_dir.name}")
    return sorted(found)


def resolve_model(model: str) -> tuple[str, Any]:
    """Map ``"default"``, ``"name"``, ``"name@version"`` or a directory path to (name, directory)."""
    candidate = Path(model)
    if candidate.is_dir() and (candidate / CARD).is_file():
        return str(candidate.resolve()), candidate
    name = DEFAULT_MODEL if model == "default" else model
    base, _, version = name.partition("@")
    available = list_models()
    versions = sorted((m.split("@")[1] for m in available if m.split("@")[0] == base), key=_version_key)
    if not versions or (version and version not in versions):
        raise ModelError(f"unknown model {model!r}; available: {', '.join(['default', *available]) or 'none'}; "
                         f"foreign encoders (extra 'peer'): {', '.join(FOREIGN_MODELS)}")
    version = version or versions[-1]
    return f"{base}@{version}", _pretrained_root().joinpath(base, version)


#: the foreign encoders by name (optional extra ``peer``): the pretrained networks of other packages, read through
#: :mod:`ssl_featurizer.models.sevennet` and :mod:`ssl_featurizer.models.chgnet`; not in :func:`list_models`, which
#: lists the models this package ships (:func:`list_foreign_models`)
FOREIGN_MODELS = ("sevennet-0", "sevennet-0-22may2024", "sevennet-l3i5", "chgnet")


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


def load_model(model: str = "default", expected_sha256: str | None = None) -> PretrainedModel | Encoder:
    """Load (once per process) a pretrained encoder, verifying the weights' sha256 before use.

    Args:
        model: ``"default"``, a registry name (``list_models()``), a model directory,
            ``"kong2023:<path to the authors' .pth>"`` (see :mod:`ssl_featurizer.models.kong2023`), or a foreign
            encoder (``list_foreign_models()``: ``"sevennet-0"``, ``"sevennet-l3i5"``, ``"chgnet"``, ...; optional
            extra ``peer``), which the featurizers use exactly like a shipped model.
        expected_sha256: if given, the weights must also have this digest (used when a pickled
            featurizer is restored: it reloads its weights by name and checks they are the same).

    Raises:
        ModelError: unknown name, missing files, truncated/corrupted weights or a digest mismatch; for a foreign
            encoder whose package is missing, :class:`~ssl_featurizer.models.foreign.MissingExtraError` (a
            ModelError and an ImportError) naming the extra to install.
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
    if expected_sha256 is not None and loaded.sha256 != expected_sha256:
        raise ModelError(f"model {loaded.name}: weights sha256 {loaded.sha256} differs from the expected "
                         f"{expected_sha256} (the installed model changed since this object was saved)")
    return loaded


def _load_verified(name: str, directory: Any) -> PretrainedModel:
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
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:  # pragma: no cover - sha256 catches first
        raise ModelError(f"model {name}: {WEIGHTS} is not a valid safetensors file: {exc}") from exc
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
    return PretrainedModel(name, card, *for_inference(encoder, torch.from_numpy(table.features)))


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
    (directory / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card
