"""Foreign encoders (SevenNet, CHGNet) through the featurizers: exactness against the packages' own forward passes,
invariances, batching, determinism, per-structure errors and cards. Skipped with the reason when the optional
packages are missing (``pip install 'ssl-featurizer[peer]'``; the ``test`` extra installs them)."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

#: the encoders run in float32 (as their packages run them): equivalent inputs agree to float32 round-off
TOL = {"rtol": 1e-4, "atol": 2e-4}


def _perturbed(structure, seed: int = 0, amount: float = 0.05):
    """A copy with every site displaced a little (breaks symmetry, so that site order and rotation matter)."""
    rng = np.random.default_rng(seed)
    out = structure.copy()
    for i in range(len(out)):
        out.translate_sites([i], rng.normal(scale=amount, size=3), frac_coords=False, to_unit_cell=True)
    return out


@pytest.fixture(scope="module")
def sevennet():
    pytest.importorskip("sevenn", reason="SevenNet adapter needs the optional extra: pip install 'ssl-featurizer[peer]'")
    from ssl_featurizer import load_model

    return load_model("sevennet-0")


@pytest.fixture(scope="module")
def chgnet():
    pytest.importorskip("chgnet", reason="CHGNet adapter needs the optional extra: pip install 'ssl-featurizer[peer]'")
    from ssl_featurizer import load_model

    return load_model("chgnet")


@pytest.fixture(scope="module")
def cells(crystals):
    names = ("SrTiO3 (perovskite)", "NaCl (rock salt)", "GaN (wurtzite)", "Si (diamond)")
    return [_perturbed(crystals[n], seed=k) for k, n in enumerate(names)]


@pytest.fixture(params=["sevennet", "chgnet"])
def encoder(request):
    return request.getfixturevalue(request.param)


def _all_layers(model, structures, batch_size=16):
    from ssl_featurizer.embed import embed_structures

    emb = embed_structures(model, structures, tuple(range(model.n_layers + 1)), batch_size=batch_size)
    assert all(e is None for e in emb.errors), emb.errors
    return emb.atoms


def test_interface_and_card(encoder):
    from ssl_featurizer.models.foreign import Encoder, LayerEncoder, file_sha256

    assert isinstance(encoder, Encoder) and isinstance(encoder, LayerEncoder)
    card = encoder.card
    assert card["training"]["kind"] == "supervised" and "MPtrj" in card["training"]["data"]
    assert card["label_overlap"]["overlapping_targets"] and card["licence"] and card["package_version"] != "unknown"
    package = __import__(card["package"])
    from pathlib import Path

    weights = Path(package.__file__).parents[1] / card["weights"]["file"]
    assert encoder.sha256 == card["weights"]["sha256"] == file_sha256(weights)
    assert len(encoder.layer_widths) == encoder.n_layers + 1 and min(encoder.layer_widths) > 0


def test_featurizers_use_a_foreign_encoder_like_a_shipped_model(sevennet, cells):
    from ssl_featurizer import SiteFeaturizer, SSLStructureFeaturizer, StructureFeaturizer

    assert StructureFeaturizer is SSLStructureFeaturizer
    f = StructureFeaturizer(model="sevennet-0", layers="12345", pooling=("mean", "std"))
    X = f.fit_transform(cells[:2])
    assert X.shape == (2, 2 * 5 * 128) == (2, len(f.feature_labels())) and np.isfinite(X).all()
    atoms = _all_layers(sevennet, cells[:1])[0]
    np.testing.assert_allclose(X[0, :640], atoms[:, 128:].mean(axis=0), rtol=1e-6, atol=1e-7)
    site = SiteFeaturizer(model="sevennet-0", layers="5").featurize(cells[0], 3)
    np.testing.assert_allclose(site, atoms[3, 5 * 128:], rtol=1e-6, atol=1e-7)
    restored = pickle.loads(pickle.dumps(f))  # reloads by name and checks the weights' sha256
    np.testing.assert_array_equal(restored.transform(cells[:2]), X)


def test_batch_equals_single_and_runs_are_deterministic(encoder, cells):
    batched = _all_layers(encoder, cells, batch_size=16)
    single = _all_layers(encoder, cells, batch_size=1)
    again = _all_layers(encoder, cells, batch_size=16)
    for b, s, a in zip(batched, single, again):
        np.testing.assert_allclose(b, s, **TOL)
        np.testing.assert_array_equal(b, a)


def test_invariant_to_rotation_translation_site_order_and_supercell(encoder, cells):
    from pymatgen.core import Lattice, Structure
    from scipy.spatial.transform import Rotation

    s = cells[0]
    rot = Rotation.from_euler("zyx", [0.3, -1.1, 2.0]).as_matrix()
    rotated = Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.frac_coords)
    shifted = s.copy()
    shifted.translate_sites(list(range(len(s))), [0.31, -0.17, 0.05], to_unit_cell=True)
    order = np.random.default_rng(1).permutation(len(s))
    permuted = Structure(s.lattice, [s.species[i] for i in order], s.frac_coords[order])
    supercell = s * (2, 1, 1)
    base, rot_e, shift_e, perm_e, super_e = _all_layers(encoder, [s, rotated, shifted, permuted, supercell])
    assert np.abs(base).max() > 0.1  # the features are not trivially zero
    np.testing.assert_allclose(rot_e, base, **TOL)
    np.testing.assert_allclose(shift_e, base, **TOL)
    np.testing.assert_allclose(perm_e, base[order], **TOL)
    np.testing.assert_allclose(super_e.mean(axis=0), base.mean(axis=0), **TOL)


def test_sevennet_layers_are_the_scalars_of_its_own_forward_pass(sevennet, cells):
    """SevenNet's calculator (its graph, its preprocessing, the whole model with forces) on one structure, with
    hooks on the species embedding and every interaction block's gate: our layers are those tensors' 0e channels.
    (The calculator gets a copy of the loaded network, the weights of the same file, to save loading it again.)"""
    import copy
    import warnings

    import torch
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = SevenNetCalculator(copy.deepcopy(sevennet.model), file_type="model_instance", device="cpu")
    seen: dict[str, torch.Tensor] = {}
    watched = ["onehot_to_feature_x", *(f"{k}_equivariant_gate" for k in range(5))]
    for name, module in calc.model.named_children():
        if name in watched:
            module.register_forward_hook(lambda m, i, out, name=name: seen.__setitem__(name, out["x"].detach()))
    atoms = AseAtomsAdaptor.get_atoms(cells[0])
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy) and len(seen) == 6
    ours = _all_layers(sevennet, cells[:1])[0]
    offset = 0
    for layer, name in enumerate(watched):
        width = sevennet.layer_widths[layer]
        theirs = seen[name].numpy()
        assert theirs.shape[1] >= width  # blocks 1-4 also carry 1o/2e channels, which are left out
        np.testing.assert_allclose(ours[:, offset:offset + width], theirs[:, :width], rtol=1e-5, atol=1e-5)
        offset += width


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # inside CHGNet's predict_structure
def test_chgnet_layers_match_its_own_atom_and_crystal_features(chgnet, cells):
    """CHGNet's ``predict_structure``: its ``atom_fea`` is our layer L-1; its ``crystal_fea`` is the sum
    over atoms (CHGNet's pooling for ``crystal_fea`` is a sum) of our layer L after CHGNet's readout norm."""
    import torch

    pred = chgnet.model.predict_structure(cells[0], task="e", return_atom_feas=True, return_crystal_feas=True)
    ours = _all_layers(chgnet, cells[:1])[0]
    width, n = chgnet.layer_widths[0], chgnet.n_layers
    np.testing.assert_allclose(ours[:, (n - 1) * width:n * width], pred["atom_fea"], rtol=1e-5, atol=1e-5)
    last = torch.from_numpy(ours[:, n * width:].astype(np.float32))
    with torch.no_grad():
        pooled = chgnet.model.readout_norm(last).sum(dim=0).numpy()
    np.testing.assert_allclose(pooled, np.ravel(pred["crystal_fea"]), rtol=1e-4, atol=1e-5)


def test_a_structure_the_encoder_cannot_take_gets_a_reason_not_an_exception(encoder, cells):
    from pymatgen.core import Lattice, Structure

    from ssl_featurizer import StructureFeaturizer
    from ssl_featurizer.featurizers.base import FeaturizationError

    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    isolated = Structure(Lattice.cubic(12.0), ["Cu", "Cu"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # nothing within 5 Å
    unknown = [z for z in range(1, 95) if z not in set(encoder.elements())]
    inputs = [cells[1], disordered, "not a structure", isolated, cells[2]]
    if unknown:
        from pymatgen.core import Element

        inputs.append(Structure(Lattice.cubic(3.0), [Element.from_Z(unknown[0]).symbol], [[0, 0, 0]]))
    f = StructureFeaturizer(model=encoder.name, layers="1", ignore_errors=True, batch_size=8)
    with pytest.warns(UserWarning):
        X = f.transform(inputs)
    _, errors = f.featurize_with_errors(inputs)
    assert np.isfinite(X[[0, 4]]).all() and np.isnan(X[[1, 2]]).all()
    assert "disordered" in errors[1] and "Structure" in errors[2]
    assert (errors[3] is None) == np.isfinite(X[3]).all()  # an isolated atom: a number or a reason, never both
    if unknown:
        assert "not trained on element" in errors[5] and np.isnan(X[5]).all()
    with pytest.raises(FeaturizationError, match="entry 1: structure is disordered"):
        StructureFeaturizer(model=encoder.name, layers="1").transform(inputs)


def test_structure_dicts_are_read_like_structures(chgnet, cells):
    atoms, errors = chgnet.embed_layers([cells[1].as_dict(), cells[1]], (0, 2))
    assert errors == [None, None]
    np.testing.assert_array_equal(atoms[0], atoms[1])


def test_a_cell_too_large_for_the_memory_bound_gets_a_reason(chgnet, cells, monkeypatch):
    monkeypatch.setattr(chgnet, "max_pairs", 2000)
    atoms, errors = chgnet.embed_layers([cells[1], cells[0] * (3, 3, 3)], (1,))
    assert errors[0] is None and atoms[0] is not None
    assert atoms[1] is None and "refused to bound memory" in errors[1]


def test_a_failing_batch_is_rerun_one_structure_at_a_time(sevennet, cells, monkeypatch):
    real = type(sevennet).forward

    def fragile(self, graphs, upto):
        if any(int(g["num_atoms"]) == len(cells[2]) for g in graphs):
            raise RuntimeError("injected failure")
        return real(self, graphs, upto)

    monkeypatch.setattr(type(sevennet), "forward", fragile)
    atoms, errors = sevennet.embed_layers(cells, (1,), batch_size=8)
    assert errors[2] == "RuntimeError: injected failure"
    assert all(errors[i] is None and atoms[i].shape == (len(cells[i]), 128) for i in (0, 1, 3))


def test_missing_package_names_the_extra(monkeypatch):
    from ssl_featurizer.models.chgnet import load_chgnet
    from ssl_featurizer.models.foreign import MissingExtraError
    from ssl_featurizer.models.sevennet import load_sevennet

    monkeypatch.setitem(sys.modules, "sevenn", None)  # import sevenn now raises ImportError
    monkeypatch.setitem(sys.modules, "chgnet", None)
    monkeypatch.setitem(sys.modules, "chgnet.model", None)
    for load, name in ((load_sevennet, "sevennet-0"), (load_chgnet, "chgnet")):
        with pytest.raises(MissingExtraError, match=r"pip install 'ssl-featurizer\[peer\]'") as info:
            load(name)
        assert isinstance(info.value, ImportError) and "\n" not in str(info.value)


def test_foreign_names_are_listed_apart_from_the_shipped_models():
    from ssl_featurizer import list_foreign_models, list_models
    from ssl_featurizer.models.registry import FOREIGN_MODELS

    assert set(list_foreign_models()) <= set(FOREIGN_MODELS) == set(list_foreign_models(installed=False))
    assert not set(FOREIGN_MODELS) & set(list_models())


def test_our_models_have_the_same_interface():
    from ssl_featurizer import Encoder, load_model
    from ssl_featurizer.models.foreign import LayerEncoder

    ours = load_model("default")
    assert isinstance(ours, Encoder) and not isinstance(ours, LayerEncoder)  # embedded through our graphs
    assert ours.layer_widths == (ours.width,) * (ours.n_layers + 1)


@pytest.mark.parametrize("level", ["structure", "site"])
def test_peer_menu_is_built_in_full_through_the_adapters(sevennet, chgnet, tmp_path, level, crystals):
    from ssl_featurizer.bench.families import build_menu, declared_menu
    from ssl_featurizer.bench.tasks import Task

    s = crystals["NaCl (rock salt)"]
    inputs = [s, s.copy()] if level == "structure" else [(s, 0), (s, 1)]
    task = Task(f"peer-{level}", inputs, np.arange(1.0, 3.0), level, None if level == "structure" else np.array([0, 1]))
    menu, missing = build_menu("peer", task, tmp_path)
    assert list(menu) == declared_menu("peer", level) and missing == []
    spec = "sevennet-0/ssl:5" if level == "structure" else "sevennet-0/ssl_site:5"
    assert menu[spec].shape == (2, 128) and np.isfinite(menu[spec]).all()


def test_streaming_command_line_with_a_foreign_encoder(sevennet, crystals, tmp_path, capsys):
    import pandas as pd

    from ssl_featurizer import StructureFeaturizer
    from ssl_featurizer.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    structures = [crystals["NaCl (rock salt)"], crystals["Si (diamond)"]]
    for k, s in enumerate(structures):
        s.to(filename=str(folder / f"s{k}.cif"))
    out = tmp_path / "features.parquet"
    assert main(["featurize", str(folder), "-o", str(out), "--model", "sevennet-0", "--layers", "5", "--quiet"]) == 0
    assert "2 structures featurized, 0 failed" in capsys.readouterr().err
    table = pd.read_parquet(out)
    columns = [c for c in table.columns if c.startswith("mean NE5_")]
    assert len(columns) == 128
    expected = StructureFeaturizer(model="sevennet-0", layers="5").transform(structures)
    got = table.sort_values(table.columns[0])[columns].to_numpy()
    np.testing.assert_allclose(got, expected, **TOL)


def test_dask_bag_with_a_foreign_encoder(chgnet, crystals):
    db = pytest.importorskip("dask.bag", reason="the Dask test needs dask (the test extra installs it)")
    from ssl_featurizer import StructureFeaturizer
    from ssl_featurizer.dask_featurize import featurize_bag

    structures = [crystals[n] for n in ("NaCl (rock salt)", "Si (diamond)", "GaN (wurtzite)")]
    f = StructureFeaturizer(model="chgnet", layers="04", ignore_errors=True)
    rows = featurize_bag(db.from_sequence(structures, npartitions=2), f).compute(scheduler="sync")
    np.testing.assert_allclose(np.stack(rows), f.transform(structures), **TOL)


def test_negnn_refuses_a_foreign_encoder_clearly(chgnet, crystals):
    from ssl_featurizer import NEGNNRegressor

    structures = [crystals["NaCl (rock salt)"], crystals["Si (diamond)"]]
    with pytest.raises(ValueError, match="foreign encoder"):
        NEGNNRegressor(model="chgnet", layers="01").fit(structures, [1.0, 2.0])
