"""Shared machinery of the SSL featurizers: parameters, model lookup, error rows, sklearn glue.

Fixes of matminer's ``BaseFeaturizer`` habits: ``__init__`` only stores parameters; nothing heavy
is pickled (a restored object reloads its model by name and checks its fingerprint); batched
inference replaces matminer's per-entry process pool; a failed entry raises a clear error (strict)
or gives a NaN row plus the reason, never a silently wrong or missing row.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from matminer.featurizers.base import BaseFeaturizer
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, Options

from ssl_featurizer.embed import parse_layers
from ssl_featurizer.graph.crystal_graph import StructureError
from ssl_featurizer.models.foreign import Encoder
from ssl_featurizer.models.registry import PretrainedModel, load_model

CITATIONS = [
    (
        "@article{kong2024self, title={Self-supervised representations and node embedding graph neural networks "
        "for accurate and multi-scale analysis of materials}, author={Kong, Jian-Gang and Zhao, Ke-Lin and "
        "Li, Jian and Li, Qing-Xu and Liu, Yu and Zhang, Rui and Zhu, Jia-Ji and Chang, Kai}, "
        "journal={Machine Learning: Science and Technology}, volume={5}, number={3}, pages={035018}, "
        "year={2024}, note={arXiv:2211.03563}}"
    ),
    (
        "@misc{ssl_featurizer, title={ssl-featurizer: pretrained self-supervised crystal graph descriptors "
        "for matminer and scikit-learn}, author={{ssl-featurizer developers}}, year={2026}}"
    ),
]


class FeaturizationError(StructureError):
    """A named input failed; the message holds its position/label and the reason.

    Attributes:
        position: 0-based position of the failing entry in the input.
        reason: why it failed.
    """

    def __init__(self, message: str, position: int = -1, reason: str = ""):
        super().__init__(message)
        self.position = position
        self.reason = reason


class FeaturizationWarning(UserWarning):
    """Some inputs failed and were given NaN rows (``ignore_errors=True``)."""


class SuspiciousStructureWarning(UserWarning):
    """Some inputs were featurized, but their descriptors may not mean what the user expects: distances
    implausible for a crystal (a lattice in nm or bohr instead of Å) or elements the model never saw."""


def warn_suspicious(notes: Sequence[str | None] | None, labels: Sequence[Any] | None = None) -> None:
    """One :class:`SuspiciousStructureWarning` naming up to five flagged inputs and why (nothing if none is)."""
    flagged = [(i, n) for i, n in enumerate(notes or ()) if n]
    if flagged:
        shown = "; ".join(f"{i if labels is None else labels[i]!r}: {n}" for i, n in flagged[:5])
        warnings.warn(f"{len(flagged)} of {len(notes)} inputs may be described wrongly: {shown}",
                      SuspiciousStructureWarning, stacklevel=4)


def check_errors(errors: Sequence[str | None], ignore_errors: bool, labels: Sequence[Any] | None = None,
                 remedy: str = "get a NaN row and the reason instead", outcome: str = "failed and got NaN rows",
                 warn: bool = True, noun: str = "entry", positions: bool = True) -> list[tuple[int, str]]:
    """The failed entries of a batch, reported the one way every estimator here reports them.

    Strict (``ignore_errors=False``): a :class:`FeaturizationError` naming the first failed entry (``noun``, its
    label when ``labels`` are given, and its position unless ``positions=False``), the reason and the ``remedy``.
    Otherwise a :class:`FeaturizationWarning` (unless ``warn=False``) naming up to five of them with their reasons.

    Returns:
        ``[(position, reason)]`` of every failed entry.
    """
    failed = [(i, e) for i, e in enumerate(errors) if e is not None]
    if failed and not ignore_errors:
        i, reason = failed[0]
        name = (f"{noun} {i}" if labels is None
                else f"{noun} {labels[i]!r}" + (f" (position {i})" if positions else ""))
        raise FeaturizationError(f"{name}: {reason}. To {remedy}, use ignore_errors=True.", position=i, reason=reason)
    if failed and warn:
        shown = "; ".join(f"{i if labels is None else labels[i]!r}: {e}" for i, e in failed[:5])
        warnings.warn(f"{len(failed)} of {len(errors)} inputs {outcome}: {shown}", FeaturizationWarning,
                      stacklevel=3)
    return failed


class SSLFeaturizerBase(BaseFeaturizer):
    """Common base of :class:`SSLStructureFeaturizer` and :class:`SSLSiteFeaturizer`."""

    # A plain attribute shadows BaseFeaturizer's read-only ``n_jobs`` property so that sklearn's
    # get_params/set_params/clone work; here it is the number of processes building graphs.
    n_jobs: int = 1

    # ---- parameters -------------------------------------------------------------------------
    def pretrained_model(self) -> PretrainedModel | Encoder:
        """The loaded pretrained model or foreign encoder (cached per process by :func:`~ssl_featurizer.load_model`).

        After :meth:`fit` (or unpickling) the model name must still give the model the featurizer was
        fitted with: its fingerprint (weights, graph settings, element table) is checked.

        Raises:
            ModelError: unknown model, corrupted weights, an edited card, or a model that differs from the
                fitted one.
        """
        fitted = getattr(self, "fitted_model_", None) == self.model
        return load_model(self.model, expected_fingerprint=self.model_fingerprint_ if fitted else None)

    def layer_indices(self, model: PretrainedModel | Encoder | None = None) -> tuple[int, ...]:
        """The selected encoder layers as a tuple of ints (``layers="012"`` → ``(0, 1, 2)``).

        Raises:
            ValueError: empty, repeated or out-of-range layers for this model.
        """
        return parse_layers(self.layers, (model or self.pretrained_model()).n_layers)

    #: what sklearn checks (``BaseEstimator._validate_params``) before the model is loaded; the layer range depends
    #: on the model and is checked once it is (:meth:`layer_indices`)
    _parameter_constraints: ClassVar[dict] = {
        "model": [str],
        "layers": [str, Integral, "array-like"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "ignore_errors": ["boolean"],
    }

    def _check_params(self, refit: bool = False) -> PretrainedModel | Encoder:
        self._validate_params()
        model = load_model(self.model) if refit else self.pretrained_model()
        self.layer_indices(model)
        return model

    def set_n_jobs(self, n_jobs: int) -> None:
        """matminer API: processes used to build graphs (the model always stays in this process)."""
        self.n_jobs = n_jobs

    def fit(self, X: Any = None, y: Any = None, **fit_params: Any):
        """Validate parameters and the model (nothing is learned: the encoder is frozen); return self."""
        model = self._check_params(refit=True)
        self.model_fingerprint_ = model.fingerprint
        self.fitted_model_ = self.model
        self.n_features_out_ = len(self.feature_labels())
        if X is not None and hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.n_features_in_ = len(X.columns)
        return self

    # ---- sklearn glue -----------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Featurize many inputs with batched inference: a ``(n_inputs, n_features)`` float64 array.

        Strict unless ``ignore_errors=True``, which gives failed inputs NaN rows and emits a
        :class:`FeaturizationWarning` naming them and the reasons. Rows out always equal rows in.
        """
        self._check_params()
        entries, labels = self._coerce(X)
        rows, errors = self.featurize_with_errors(entries, progress=getattr(self, "progress", False))
        check_errors(errors, self.ignore_errors, labels)
        return rows

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names (the same as :meth:`feature_labels`)."""
        return np.asarray(self.feature_labels(), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # a frozen pretrained model: transform works without fit
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True  # a list/Series of Structures (or a one-column DataFrame)
        # matminer lists BaseEstimator before TransformerMixin, so the transformer tags are missing
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        tags.non_deterministic = False
        return tags

    def __getstate__(self) -> dict[str, Any]:
        # sklearn's state (with its version stamp) minus the caches: only parameters and fitted scalars travel;
        # the model is reloaded (and its fingerprint checked) by name.
        return {k: v for k, v in super().__getstate__().items() if not k.startswith("_cache")}

    # ---- matminer glue ----------------------------------------------------------------------
    def citations(self) -> list[str]:
        """The paper the method comes from, and this package."""
        return list(CITATIONS)

    def implementors(self) -> list[str]:
        """Who wrote this featurizer."""
        return ["ssl-featurizer developers"]

    def featurize_many(self, entries: Any, ignore_errors: bool = False, return_errors: bool = False,
                       pbar: bool = True) -> list[list]:
        """Batched replacement of matminer's per-entry loop; same return format (lists, NaN rows).

        Overridden because matminer's version featurizes entry by entry in a process pool (which would pickle
        the model to every worker and run one forward pass per structure)."""
        if return_errors and not ignore_errors:
            raise ValueError("Please set ignore_errors to True to use return_errors.")
        rows, errors = self.featurize_with_errors(self._entries(entries), progress=bool(pbar))
        check_errors(errors, ignore_errors, warn=False)
        out = []
        for row, err in zip(rows, errors):
            row = list(row)
            if return_errors:
                row.append(float("nan") if err is None else err)
            out.append(row)
        return out

    def featurize_dataframe(self, df: Any, col_id: Any, ignore_errors: bool = False, return_errors: bool = False,
                            inplace: bool = False, multiindex: bool = False, pbar: bool = True) -> Any:
        """matminer's ``featurize_dataframe``, batched; a strict failure names the row's index label.

        Overridden only to rename a failure by the row's index label (matminer's version knows positions only);
        the work is matminer's, through :meth:`featurize_many`."""
        try:
            return super().featurize_dataframe(df, col_id, ignore_errors=ignore_errors, return_errors=return_errors,
                                               inplace=inplace, multiindex=multiindex, pbar=pbar)
        except FeaturizationError as exc:
            i = exc.position
            raise FeaturizationError(f"row {df.index[i]!r} (position {i}): {exc.reason}. To get a NaN row and the "
                                     "reason instead, use ignore_errors=True.", position=i, reason=exc.reason) from None

    def featurize_wrapper(self, x: Any, return_errors: bool = False, ignore_errors: bool = False) -> list:
        """matminer API: featurize one entry with the error handling of :meth:`featurize_many`.

        Overridden so that one entry takes the batched path too (matminer's version calls ``featurize``)."""
        return self.featurize_many([tuple(x)], ignore_errors, return_errors, pbar=False)[0]

    def featurize_with_errors(self, entries: Sequence[Any],
                              progress: bool | Callable[[int], None] = False) -> tuple[np.ndarray, list[str | None]]:
        """Rows and per-entry failure reasons of many entries, never raising for a bad entry.

        The building block of :meth:`transform`, :mod:`ssl_featurizer.stream` and
        :mod:`ssl_featurizer.dask_featurize`: batched inference in this process, whatever ``ignore_errors`` says.

        Args:
            entries: a list of inputs (structures for the structure featurizer, ``(structure, index)``
                pairs for the site featurizer).
            progress: ``True`` for a tqdm bar, or a function called with the number of entries done
                after each forward batch (to drive a caller's own bar).

        Returns:
            ``(rows, errors)``: a ``(len(entries), n_features)`` float64 array with NaN rows where
            ``errors[i]`` (the reason) is not None.
        """
        return self._featurize_batch(list(entries), progress=progress)

    # ---- helpers for subclasses -------------------------------------------------------------
    def _coerce(self, X: Any) -> tuple[list, list | None]:
        """Inputs as a list of entries, plus index labels (or None)."""
        raise NotImplementedError

    def _entries(self, entries: Any) -> list:
        return self._coerce(entries)[0]

    def _featurize_one(self, entry: Any) -> list[float]:
        rows, errors = self.featurize_with_errors([entry])
        check_errors(errors, ignore_errors=False)
        return rows[0].tolist()

    def _featurize_batch(self, entries: list, progress: bool | Callable[[int], None] = False
                         ) -> tuple[np.ndarray, list[str | None]]:
        """Subclass hook behind :meth:`featurize_with_errors`."""
        raise NotImplementedError
