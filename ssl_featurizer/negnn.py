"""NEGNN: a supervised crystal GNN whose atoms carry the frozen self-supervised embeddings as extra features.

Kong et al. (arXiv 2211.03563, "node-embedding GNN") feed the pretrained atom embeddings of chosen
layers into a supervised CGCNN, next to the usual element features. :class:`NEGNNRegressor` does
this as a scikit-learn regressor:

1. every structure becomes a crystal graph once (:func:`ssl_featurizer.embed.build_graphs`, with the
   pretrained model's own :class:`~ssl_featurizer.graph.crystal_graph.GraphConfig`);
2. the frozen encoder embeds every graph once (:func:`ssl_featurizer.embed.embed_graphs`); the
   embedding columns are standardised with training-atom statistics;
3. node input = the 79-column element features ‖ the standardised embeddings of ``layers``;
   ``n_conv`` × (:class:`~ssl_featurizer.encoder.layers.CGConv` → BatchNorm → softplus) on Gaussian-expanded
   distances, mean pooling, a two-layer MLP head;
4. AdamW on a seeded internal train/validation split, learning rate halved on plateaus, early
   stopping with the best-validation weights restored.

``layers=None`` drops step 2: the same network on element features only, a plain CGCNN baseline.

Only the trained ``state_dict_`` is pickled; the frozen pretrained model is reloaded by name and its
sha256 checked against the one seen in ``fit``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval, Options, StrOptions
from torch import Tensor, nn
from torch.nn import functional as F

from ssl_featurizer.embed import build_graphs, embed_graphs, parse_layers
from ssl_featurizer.encoder.layers import CGConv, GaussianExpansion
from ssl_featurizer.featurizers import DEFAULT_LAYERS
from ssl_featurizer.featurizers.base import check_errors
from ssl_featurizer.featurizers.inputs import as_structure_list
from ssl_featurizer.graph.batch import collate_graphs, graph_mean
from ssl_featurizer.graph.crystal_graph import CrystalGraph, GraphConfig
from ssl_featurizer.graph.elements import load_element_table
from ssl_featurizer.models.registry import DEFAULT_MODEL, PretrainedModel, load_model

LOSSES = ("mse", "l1", "huber")


def _graph_model(model: str, expected_fingerprint: str | None = None) -> PretrainedModel:
    """One of this package's models (the NEGNN runs on its crystal graphs); a foreign encoder is refused."""
    loaded = load_model(model, expected_fingerprint=expected_fingerprint)
    if not isinstance(loaded, PretrainedModel):
        raise ValueError(f"model={model!r} is a foreign encoder: NEGNNRegressor needs one of this package's models "
                         "(it builds on their crystal graphs); use StructureFeaturizer for foreign encoders")
    return loaded


class NEGNNNet(nn.Module):
    r"""The supervised network: linear embedding, ``n_conv`` CGConv blocks, mean pooling, MLP head.

    .. math::
        h^0 = W x + b,\qquad h^{l} = \operatorname{softplus}\big(\mathrm{BN}_l(\mathrm{CGConv}_l(h^{l-1},
        \mathrm{gauss}(d)))\big),\qquad \hat y = \mathrm{MLP}\Big(\tfrac{1}{n}\sum_i h^{L}_i\Big)

    Shapes:
        - x: ``(N, n_inputs)`` node features (element features ‖ frozen embeddings)
        - edge_index: ``(2, E)``, row 0 neighbour, row 1 centre
        - distances: ``(E,)``
        - batch: ``(N,)`` graph of each node
        - output: ``(B,)``
    """

    def __init__(self, n_inputs: int, width: int = 64, n_conv: int = 3, hidden: int = 128,
                 cutoff: float = 8.0, n_gaussians: int = 41):
        super().__init__()
        self.expansion = GaussianExpansion(0.0, cutoff, n_gaussians)
        self.embedding = nn.Linear(n_inputs, width)
        self.convs = nn.ModuleList(CGConv(width, n_gaussians) for _ in range(n_conv))
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(n_conv))
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.Softplus(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor, edge_index: Tensor, distances: Tensor, batch: Tensor, n_graphs: int) -> Tensor:
        edge_attr = self.expansion(distances)
        h = self.embedding(x)
        for conv, norm in zip(self.convs, self.norms):
            h = F.softplus(norm(conv(h, edge_index, edge_attr)))
        return self.head(graph_mean(h, batch, n_graphs)).squeeze(-1)


@dataclass
class _Inputs:
    """Graphs and per-atom node features of the structures that could be featurized.

    Attributes:
        index: position in the caller's input of each usable structure.
        graphs: their crystal graphs.
        features: per structure, ``(n_atoms, n_inputs)`` float32 node features (standardised embeddings
            not yet applied: see :meth:`NEGNNRegressor._node_features`).
        errors: for every input, None or the reason it failed.
    """

    index: np.ndarray
    graphs: list[CrystalGraph]
    features: list[np.ndarray]
    errors: list[str | None]

    def batch(self, rows: np.ndarray) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
        """Collate the rows (positions in ``graphs``) into network inputs."""
        b = collate_graphs([self.graphs[i] for i in rows])
        x = torch.from_numpy(np.concatenate([self.features[i] for i in rows]))
        return x, b.edge_index, b.distance, b.batch, len(rows)


class NEGNNRegressor(RegressorMixin, BaseEstimator):
    """Node-embedding GNN regressor: a CGCNN trained on your targets, fed the frozen SSL atom embeddings.

    Node inputs are the element features (79 one-hot columns) concatenated with the pretrained
    encoder's embeddings of ``layers`` (``"01"``: h0 ‖ h1, 128 columns for the default model); with
    ``layers=None`` the same network sees element features only (the plain CGCNN baseline). Graphs
    and embeddings are computed once per structure in :meth:`fit`; training then only runs the small
    supervised network (CPU-friendly: a few thousand structures train in minutes).

    Args:
        model: pretrained model for the embeddings and the graph settings (``"default"``, a name from
            :func:`ssl_featurizer.list_models`, or a model directory).
        layers: the paper's layer string (``"0"``, ``"01"``, ``"012"``, ...), a tuple of ints, or None for
            no embeddings (plain CGCNN).
        width: node width of the supervised network.
        n_conv: number of graph convolutions.
        hidden: width of the MLP head's hidden layer.
        lr: initial AdamW learning rate (halved when the validation loss stalls for ``patience // 3`` epochs).
        weight_decay: AdamW weight decay.
        batch_size: structures per training step.
        max_epochs: upper bound on training epochs.
        min_epochs: weights are selected (and early stopping counts) only from this epoch on (or from
            ``max_epochs`` if smaller): the first epochs' BatchNorm statistics are immature, and a small
            validation split can favour them by chance.
        patience: stop after this many epochs without a better validation loss (the best weights are restored).
        validation_fraction: fraction of the fit data held out for early stopping (0: no early stopping;
            train ``max_epochs`` and keep the last weights).
        loss: ``"mse"``, ``"l1"`` or ``"huber"`` (on the standardised target).
        standardize_target: train on ``(y - mean) / std`` of the training rows.
        random_state: seed of the weights' initialisation, the validation split and the shuffling
            (an int makes ``fit`` reproducible).
        n_jobs: processes used to build graphs.
        ignore_errors: in ``fit``, skip structures that cannot be featurized (with a warning naming
            them); in ``predict``, give them NaN. When False (default) they raise
            :class:`~ssl_featurizer.FeaturizationError` naming the entry and the reason.
        progress: show progress bars (embedding and epochs).

    Attributes:
        model_fingerprint_: fingerprint of the pretrained model used in ``fit`` (weights, graph settings, element
            table; None when ``layers=None``).
        layers_: the parsed layer tuple (None for the baseline).
        graph_config_: how graphs were built.
        n_inputs_: node input width.
        embedding_mean_, embedding_scale_: standardisation of the embedding columns (training atoms).
        y_mean_, y_scale_: target standardisation.
        state_dict_: trained weights of :class:`NEGNNNet` (best validation epoch).
        history_: per epoch, ``{"epoch", "train_loss", "val_loss", "val_mae", "lr"}``.
        best_epoch_: 1-based epoch whose weights were kept; ``n_epochs_``: epochs run.
        n_train_, n_val_: structures in the internal training and validation split.
        fit_errors_: ``(position, reason)`` of structures skipped in ``fit`` (``ignore_errors=True``).

    Example:
        ``model = NEGNNRegressor(layers="01", random_state=0).fit(train_structures, y_train)`` then
        ``model.predict(test_structures)``; see ``docs/negnn.md``.
    """

    # sklearn validates these in fit (``BaseEstimator._validate_params``); the layer range depends on the model and
    # is checked when it is loaded
    _parameter_constraints: ClassVar[dict] = {
        "model": [str],
        "layers": [str, Integral, "array-like", None],
        **{name: [Interval(Integral, 1, None, closed="left")]
           for name in ("width", "n_conv", "hidden", "batch_size", "max_epochs", "min_epochs", "patience")},
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "loss": [StrOptions(set(LOSSES))],
        "standardize_target": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "ignore_errors": ["boolean"],
        "progress": ["boolean"],
    }

    def __init__(self, model: str = DEFAULT_MODEL, layers: str | int | Sequence[int] | None = DEFAULT_LAYERS,
                 width: int = 64,
                 n_conv: int = 3, hidden: int = 128, lr: float = 3e-3, weight_decay: float = 0.0,
                 batch_size: int = 64, max_epochs: int = 100, min_epochs: int = 10, patience: int = 15,
                 validation_fraction: float = 0.1,
                 loss: str = "mse", standardize_target: bool = True, random_state: int | None = None,
                 n_jobs: int = 1, ignore_errors: bool = False, progress: bool = False):
        self.model = model
        self.layers = layers
        self.width = width
        self.n_conv = n_conv
        self.hidden = hidden
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.loss = loss
        self.standardize_target = standardize_target
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.ignore_errors = ignore_errors
        self.progress = progress

    # ---- parameters -------------------------------------------------------------------------------
    def _pretrained(self, fitted: bool) -> PretrainedModel | None:
        """The frozen model (None for the baseline); after fit its fingerprint must match the one fitted."""
        if (self.layers_ if fitted else self.layers) is None:
            return None
        return _graph_model(self.model, expected_fingerprint=self.model_fingerprint_ if fitted else None)

    # ---- featurization ----------------------------------------------------------------------------
    def _inputs(self, X: Any, pretrained: PretrainedModel | None, graph_config: GraphConfig,
                layers: tuple[int, ...] | None) -> tuple[_Inputs, list | None]:
        """Graphs (built once) and raw node features (embedded once) of every usable input."""
        structures, labels = as_structure_list(X)
        graphs = build_graphs(structures, graph_config, self.n_jobs,
                              vectors=pretrained is not None and pretrained.encoder.needs_vectors)
        errors = [g if isinstance(g, str) else None for g in graphs]
        index = np.array([i for i, e in enumerate(errors) if e is None], dtype=np.int64)
        ok = [graphs[i] for i in index]
        table = load_element_table().features
        features = [table[g.atomic_numbers] for g in ok]
        if pretrained is not None and ok:
            from tqdm.auto import tqdm

            chunk = 256
            embedded: list[np.ndarray] = []
            for start in tqdm(range(0, len(ok), chunk), desc="embedding", unit="chunk", disable=not self.progress):
                embedded += embed_graphs(pretrained, ok[start:start + chunk], layers, batch_size=64)
            features = [np.hstack([f, e.astype(np.float32)]) for f, e in zip(features, embedded)]
        return _Inputs(index, ok, features, errors), labels

    def _standardise(self, data: _Inputs) -> None:
        """Apply the fitted embedding standardisation in place (element columns are left as they are)."""
        n_el = load_element_table().n_features
        if self.embedding_mean_ is None:
            return
        for k, f in enumerate(data.features):
            f = f.copy()
            f[:, n_el:] = (f[:, n_el:] - self.embedding_mean_) / self.embedding_scale_
            data.features[k] = f

    # ---- fit / predict ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> NEGNNRegressor:
        """Build graphs and embeddings once, then train the network with early stopping.

        Args:
            X: pymatgen Structures (list, array, Series or one-column DataFrame).
            y: targets, one per structure.

        Raises:
            FeaturizationError: a structure cannot be featurized (unless ``ignore_errors``).
            ValueError: bad parameters, mismatched or non-finite ``y``, too few structures.
        """
        from sklearn.utils import check_random_state
        from sklearn.utils.validation import column_or_1d

        self._validate_params()
        y = column_or_1d(np.asarray(y, dtype=np.float64), warn=True)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"y has {int((~np.isfinite(y)).sum())} NaN or infinite values")
        layers = None
        pretrained = None
        graph_config = GraphConfig()
        if self.layers is not None:
            pretrained = _graph_model(self.model)
            layers = parse_layers(self.layers, pretrained.n_layers)
            graph_config = pretrained.graph_config
        elif self.model is not None:
            graph_config = _graph_model(self.model).graph_config  # same graphs as the NEGNN it is compared with
        data, labels = self._inputs(X, pretrained, graph_config, layers)
        if len(data.errors) != len(y):
            raise ValueError(f"X has {len(data.errors)} structures but y has {len(y)} values")
        self.fit_errors_ = check_errors(data.errors, self.ignore_errors, labels, remedy="skip it in fit",
                                        outcome="were skipped in fit")
        y = y[data.index]
        n = len(y)
        n_val = round(self.validation_fraction * n) if self.validation_fraction > 0 else 0
        if self.validation_fraction > 0:
            n_val = max(n_val, 1)
        if n - n_val < 2:
            raise ValueError(f"need at least 2 training structures after the validation split, got {n - n_val} "
                             f"(of {n} usable)")
        rng = np.random.default_rng(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        perm = rng.permutation(n)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        self.layers_ = layers
        self.model_fingerprint_ = None if pretrained is None else pretrained.fingerprint
        self.graph_config_ = graph_config
        self.n_inputs_ = int(data.features[0].shape[1])
        n_el = load_element_table().n_features
        if pretrained is not None:
            atoms = np.concatenate([data.features[i][:, n_el:] for i in train]).astype(np.float64)
            self.embedding_mean_ = atoms.mean(axis=0).astype(np.float32)
            self.embedding_scale_ = np.where(atoms.std(axis=0) > 1e-8, atoms.std(axis=0), 1.0).astype(np.float32)
        else:
            self.embedding_mean_ = self.embedding_scale_ = None
        self._standardise(data)
        self.y_mean_ = float(y[train].mean()) if self.standardize_target else 0.0
        std = float(y[train].std()) if self.standardize_target else 1.0
        self.y_scale_ = std if std > 1e-12 else 1.0
        target = torch.from_numpy(((y - self.y_mean_) / self.y_scale_).astype(np.float32))
        self._train(data, target, train, val, rng)
        self.n_train_, self.n_val_ = len(train), len(val)
        return self

    def _new_net(self) -> NEGNNNet:
        return NEGNNNet(self.n_inputs_, self.width, self.n_conv, self.hidden, self.graph_config_.cutoff)

    def _minibatches(self, rows: np.ndarray, data: _Inputs) -> list[np.ndarray]:
        """Split rows into about equal minibatches; BatchNorm needs at least 2 atoms in each."""
        parts = [p for p in np.array_split(rows, max(1, int(np.ceil(len(rows) / self.batch_size)))) if len(p)]
        merged: list[np.ndarray] = []
        for p in parts:
            if merged and sum(data.graphs[i].n_atoms for i in p) < 2:
                merged[-1] = np.concatenate([merged[-1], p])
            else:
                merged.append(p)
        if len(merged) > 1 and sum(data.graphs[i].n_atoms for i in merged[0]) < 2:
            merged[1] = np.concatenate([merged[0], merged[1]])
            merged = merged[1:]
        return merged

    def _train(self, data: _Inputs, target: Tensor, train: np.ndarray, val: np.ndarray,
               rng: np.random.Generator) -> None:
        from tqdm.auto import tqdm

        loss_fn = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.smooth_l1_loss}[self.loss]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(np.iinfo(np.int32).max)))
            net = self._new_net()
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5,
                                                               patience=max(1, self.patience // 3))
        history: list[dict[str, float]] = []
        best_loss, best_state, best_epoch, stale = np.inf, None, 0, 0
        bar = tqdm(range(1, self.max_epochs + 1), desc="training", unit="epoch", disable=not self.progress)
        for epoch in bar:
            net.train()
            total, count = 0.0, 0
            for rows in self._minibatches(rng.permutation(train), data):
                pred = net(*data.batch(rows))
                loss = loss_fn(pred, target[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(rows)
                count += len(rows)
            record = {"epoch": epoch, "train_loss": total / count, "val_loss": np.nan, "val_mae": np.nan,
                      "lr": optimiser.param_groups[0]["lr"]}
            if len(val):
                pred = self._forward(net, data, val)
                record["val_loss"] = float(loss_fn(pred, target[val]))
                record["val_mae"] = float((pred - target[val]).abs().mean()) * self.y_scale_
                scheduler.step(record["val_loss"])
                if epoch >= min(self.min_epochs, self.max_epochs):
                    if record["val_loss"] < best_loss:
                        best_loss, best_epoch, stale = record["val_loss"], epoch, 0
                        best_state = copy.deepcopy(net.state_dict())
                    else:
                        stale += 1
            history.append(record)
            bar.set_postfix(train=f"{record['train_loss']:.3g}", val=f"{record['val_loss']:.3g}")
            if len(val) and stale >= self.patience:
                break
        bar.close()
        if best_state is None:
            best_state, best_epoch = net.state_dict(), len(history)
        self.state_dict_ = {k: v.detach().clone() for k, v in best_state.items()}
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.n_epochs_ = len(history)
        net.load_state_dict(self.state_dict_)
        self._net = net.eval()

    @torch.no_grad()
    def _forward(self, net: NEGNNNet, data: _Inputs, rows: np.ndarray, batch_size: int = 256) -> Tensor:
        """Standardised predictions for ``rows`` in eval mode (BatchNorm running statistics)."""
        was_training = net.training
        net.eval()
        out = [net(*data.batch(rows[s:s + batch_size])) for s in range(0, len(rows), batch_size)]
        net.train(was_training)
        return torch.cat(out) if out else torch.zeros(0)

    def _fitted_net(self) -> NEGNNNet:
        net = getattr(self, "_net", None)
        if net is None:  # unpickled or cloned-with-state: rebuild from the stored weights
            net = self._new_net()
            net.load_state_dict(self.state_dict_)
            self._net = net = net.eval()
        return net

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, ``(n_structures,)`` float64 (NaN for failed inputs with ``ignore_errors``).

        Raises:
            FeaturizationError: a structure cannot be featurized (unless ``ignore_errors``).
            NotFittedError: before ``fit``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "state_dict_")
        pretrained = self._pretrained(fitted=True)
        data, labels = self._inputs(X, pretrained, self.graph_config_, self.layers_)
        check_errors(data.errors, self.ignore_errors, labels, remedy="get a NaN prediction instead",
                     outcome="got NaN predictions")
        self._standardise(data)
        out = np.full(len(data.errors), np.nan)
        if len(data.index):
            pred = self._forward(self._fitted_net(), data, np.arange(len(data.index))).numpy().astype(np.float64)
            out[data.index] = pred * self.y_scale_ + self.y_mean_
        return out

    # ---- sklearn / pickle glue --------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True  # a list/array/Series of Structures
        tags.non_deterministic = self.random_state is None
        return tags

    def __getstate__(self) -> dict[str, Any]:
        # parameters, fitted arrays and the trained state_dict_; never the network object nor the frozen
        # pretrained model (reloaded by name; its sha256 is checked in predict)
        state = super().__getstate__()
        state.pop("_net", None)
        return state
