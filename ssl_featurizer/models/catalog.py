"""The catalogue of shipped models: names, versions, the default, and each model's card, read without loading any
weights (and without importing torch), so that a wrong name or layer is reported at once.

Each model lives in ``pretrained/<name>/<version>/`` (installed as ``ssl_featurizer.pretrained``) with
``model.safetensors`` and ``card.json``; :mod:`ssl_featurizer.models.registry` loads and verifies them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


class ModelError(ValueError):
    """Unknown model name, unreadable card, or weights that fail verification."""


WEIGHTS = "model.safetensors"
CARD = "card.json"
#: what ``model="default"`` means: pinned to one version, so that shipping a new version never changes the
#: default silently (the default is chosen by ``studies/choose_default.py``; ``"cgcnn-ssl-mp2025"`` alone
#: means its newest version)
DEFAULT_MODEL = "cgcnn-ssl-mp2025@2.0"


#: the foreign encoders by name (optional extra ``peer``): the pretrained networks of other packages, read through
#: :mod:`ssl_featurizer.models.sevennet` and :mod:`ssl_featurizer.models.chgnet`; not in :func:`list_models`, which
#: lists the models this package ships (``registry.list_foreign_models`` lists the installed ones)
FOREIGN_MODELS = ("sevennet-0", "sevennet-0-22may2024", "sevennet-l3i5", "chgnet")

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

    The foreign encoders (SevenNet, CHGNet) are listed apart (:data:`FOREIGN_MODELS`).
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


def read_card(model: str) -> dict[str, Any]:
    """The parsed ``card.json`` of a shipped model name (``"default"``, ``name``, ``name@version``) or a model
    directory, without loading its weights (they are verified when the model is loaded).

    Raises:
        ModelError: unknown model or unreadable card.
    """
    name, directory = resolve_model(model)
    try:
        return json.loads(directory.joinpath(CARD).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model {name}: cannot read {CARD}: {exc}") from exc
