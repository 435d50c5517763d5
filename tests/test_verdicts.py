"""The verdict benchmark's machinery: nested choice per family, the corrected t-test, menus, outer splits."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from ssl_featurizer.bench.krr import KernelRidgeCV
from ssl_featurizer.bench.selection import SCREEN_GRID, Menu, inner_scores, select_and_score, select_on_splits, selected
from ssl_featurizer.bench.stats import corrected_ttest, verdict


def _menu(n: int = 60, seed: int = 0) -> tuple[Menu, np.ndarray]:
    """Two blocks: ``signal`` determines a positive target, ``noise`` does not."""
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    y = np.exp(0.5 * signal[:, 0] + 0.3 * np.sin(2 * signal[:, 1])) + 0.05 * rng.normal(size=n) ** 2
    return Menu({"signal": signal, "noise": noise},
                {"noise": ("noise",), "signal": ("signal",), "signal+noise": ("signal", "noise")}), y


def test_block_distances_give_the_pipeline_scores():
    """A concatenation's inner kernel ridge score equals the protocol pipeline's on the concatenated columns."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    menu, y = _menu()
    train = np.arange(45)
    x = menu.features("signal+noise")
    pipe = make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(),
                         KernelRidgeCV(**SCREEN_GRID, cv=3, random_state=4)).fit(x[train], y[train])
    ours = inner_scores(menu, y, train, seed=4)[("signal+noise", "krr")]
    assert ours == pytest.approx(min(pipe[-1].cv_results_.values()), rel=1e-9)


def test_nested_choice_prefers_the_informative_variant_and_scores_one_configuration():
    menu, y = _menu(80)
    train, test = np.arange(60), np.arange(60, 80)
    rows = select_and_score(menu, y, train, test, seed=0, regressors=("krr", "krr_log"))
    assert len(rows) == 3 * 2
    chosen = [r for r in rows if r["selected"]]
    assert len(chosen) == 1 and "signal" in chosen[0]["spec"]
    assert all(("test_mae" in r) == r["selected"] for r in rows)
    assert np.isfinite(chosen[0]["test_mae"]) and chosen[0]["inner_mae"] == min(r["inner_mae"] for r in rows)


def test_split_seed_reads_every_split_name_the_protocol_gives():
    """One parse of a split's name for every study: random splits, official folds and repeated k-fold."""
    from ssl_featurizer.bench.protocol import split_seed

    assert [split_seed(f"seed{k}") for k in (0, 3, 12)] == [0, 3, 12]
    assert [split_seed(f"fold{k}") for k in range(5)] == list(range(5))  # the parse that once failed on "fold0"
    assert split_seed("r1f3") == 13 and split_seed("r0f4") == 4 and split_seed("all") == 0


def test_select_on_splits_is_select_and_score_per_split_seeded_by_name():
    from ssl_featurizer.bench.protocol import split_seed, splits
    from ssl_featurizer.bench.tasks import Task

    menu, y = _menu(60, seed=2)
    task = Task("synthetic", [None] * len(y), y, level="structure")
    split_list = splits(task, [1, 4])
    got = list(select_on_splits(menu, task, split_list))
    assert [name for name, *_ in got] == ["seed1", "seed4"]
    for (name, train, test, rows), (_, tr, te) in zip(got, split_list):
        assert np.array_equal(train, tr) and np.array_equal(test, te)
        assert rows == select_and_score(menu, y, tr, te, split_seed(name))
        assert selected(rows) == next(r for r in rows if r["selected"]) and "test_mae" in selected(rows)


def test_permuting_the_test_targets_moves_no_choice():
    """The test rows never influence the choice: shuffled test targets leave every inner score unchanged."""
    menu, y = _menu(80, seed=1)
    train, test = np.arange(0, 80, 4), np.setdiff1d(np.arange(80), np.arange(0, 80, 4))
    train, test = test, train  # 60 training rows, 20 test rows, interleaved
    regs = ("krr", "krr_log")  # (gbr and the ensemble take minutes here; their fits see the same rows)
    before = select_and_score(menu, y, train, test, seed=3, regressors=regs)
    shuffled = y.copy()
    shuffled[test] = np.random.default_rng(0).permutation(y[test]) * 10
    after = select_and_score(menu, shuffled, train, test, seed=3, regressors=regs)
    assert [(r["spec"], r["regressor"], r["inner_mae"], r["selected"]) for r in before] == \
        [(r["spec"], r["regressor"], r["inner_mae"], r["selected"]) for r in after]


def test_grouped_inner_folds_and_log_regressors_need_positive_targets():
    menu, y = _menu(60)
    groups = np.repeat(np.arange(20), 3)
    train = np.arange(45)
    scores = inner_scores(menu, y, train, seed=0, groups=groups, regressors=("krr", "krr_log"))
    assert set(scores) == {(s, r) for s in menu for r in ("krr", "krr_log")}
    with pytest.raises(ValueError, match="strictly positive"):
        inner_scores(menu, y - 10, train, seed=0, regressors=("krr_log",))


def test_corrected_ttest_by_hand():
    # diffs (1, 3): mean 2, sample variance 2; J = 2, n_test / n_train = 1.5 -> t = 2 / sqrt((1/2 + 1.5) * 2) = 1,
    # one degree of freedom (Cauchy): p = 1 - 2 atan(1) / pi = 0.5
    t, p = corrected_ttest([1.0, 3.0], n_train=2, n_test=3)
    assert t == pytest.approx(1.0) and p == pytest.approx(0.5)
    # n_test / n_train = 1/6 -> t = 2 / sqrt((2/3) * 2) = sqrt(3): p = 1 - 2 atan(sqrt 3) / pi = 1/3
    t, p = corrected_ttest([1.0, 3.0], n_train=6, n_test=1)
    assert t == pytest.approx(np.sqrt(3)) and p == pytest.approx(1 / 3)
    # the correction only ever widens: the uncorrected paired t-test would be sqrt(2) x larger here
    assert corrected_ttest([-1.0, -3.0], 6, 1)[0] == pytest.approx(-np.sqrt(3))
    assert corrected_ttest([0.0, 0.0, 0.0], 8, 2) == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        corrected_ttest([1.0], 8, 2)


def test_verdict_needs_lower_mean_and_significance():
    assert verdict("ssl", 0.1, "handbuilt", 0.2, 0.01) == "ssl wins"
    assert verdict("ssl", 0.3, "handbuilt", 0.2, 0.01) == "handbuilt wins"
    assert verdict("ssl", 0.1, "handbuilt", 0.2, 0.05) == "tie"
    assert verdict("ssl", 0.1, "handbuilt", 0.2, 0.2) == "tie"


def _structure(a: float, species: tuple[str, str]) -> Structure:
    return Structure(Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_repeated_kfold_tests_every_row_once_per_repeat_and_keeps_materials_whole():
    from ssl_featurizer.bench.protocol import repeated_kfold
    from ssl_featurizer.bench.tasks import Task

    s = _structure(4.0, ("Na", "Cl"))
    task = Task("t", [(s, i % 2) for i in range(30)], np.arange(30.0), "site", np.repeat(np.arange(10), 3))
    splits = repeated_kfold(task, repeats=2, folds=5)
    assert len(splits) == 10
    for r in range(2):
        tested = np.concatenate([te for name, _, te in splits if name.startswith(f"r{r}")])
        assert sorted(tested) == list(range(30))
    for _, tr, te in splits:
        assert not set(task.groups[tr]) & set(task.groups[te])


def test_declared_menus_share_one_regressor_menu_and_match_the_docs():
    from pathlib import Path

    from ssl_featurizer.bench.families import (
        BASE_REGRESSORS,
        FAMILIES,
        POSITIVE_REGRESSORS,
        declared_menu,
        regressor_menu,
    )

    assert regressor_menu(np.array([-1.0, 2.0])) == BASE_REGRESSORS
    assert regressor_menu(np.array([1.0, 2.0])) == (*BASE_REGRESSORS, *POSITIVE_REGRESSORS)
    assert "ensemble_log" not in regressor_menu(np.array([1.0, 2.0]), grouped=True)
    page = (Path(__file__).parents[1] / "docs" / "benchmarks.md").read_text()
    for family in FAMILIES:
        for level in ("structure", "site"):
            menu = declared_menu(family, level)
            assert len(menu) == len(set(menu))
            for variant in menu:
                assert f"`{variant.split('/')[-1]}`" in page, f"docs/benchmarks.md does not list {variant}"
    assert len(declared_menu("authors")) == 2 * len(declared_menu("ssl"))


def test_build_menu_reports_what_it_left_out(tmp_path):
    from ssl_featurizer.bench.families import COMBINED, build_menu, declared_menu
    from ssl_featurizer.bench.tasks import Task

    structures = [_structure(a, sp) for a in (4.0, 4.4) for sp in (("Na", "Cl"), ("K", "Br"))]
    task = Task("tiny", structures, np.arange(4.0))
    menu, missing = build_menu("handbuilt", task, tmp_path, skip=("ofm", "site_stats_crystalnn", "soap",
                                                                   "sine_coulomb"))
    assert list(menu) == ["magpie", "symmetry_density", "symmetry_density+magpie"]
    assert any(m.startswith("ofm+magpie: ofm skipped") for m in missing)
    assert any(m.startswith(f"{COMBINED}: site_stats_crystalnn skipped") for m in missing)
    assert len(menu) + len(missing) == len(declared_menu("handbuilt")) == 12


def test_chgnet_features_of_a_small_cell(tmp_path):
    pytest.importorskip("chgnet", reason="the peer family needs the optional extra: pip install 'ssl-featurizer[peer]'")
    from ssl_featurizer.bench.descriptors import compute
    from ssl_featurizer.bench.tasks import Task

    s = _structure(4.1, ("Cs", "Cl"))
    x, _ = compute("chgnet", Task("one", [s, s.copy()], np.zeros(2)), tmp_path)
    assert x.shape[0] == 2 and x.shape[1] >= 32 and np.isfinite(x).all()
    np.testing.assert_allclose(x[0], x[1])
    sites, _ = compute("chgnet_site", Task("sites", [(s, 0), (s, 1)], np.zeros(2), "site"), tmp_path)
    assert sites.shape == (2, x.shape[1]) and not np.allclose(sites[0], sites[1])


def test_verdict_tables_mark_incomplete_menus_and_count_material_sets_once():
    import pandas as pd
    from verdicts import tables  # studies/ is on pytest's pythonpath
    rng = np.random.default_rng(0)
    rows = []
    for task in ("kong2023_log_kvrh", "kong2023_log_gvrh"):
        for k in range(10):
            base = 0.06 + 0.004 * rng.normal()
            for family, offset, missing in (("ssl", 0.0, ""), ("authors", 0.01, ""), ("handbuilt", 0.02, "ofm: ofm skipped"),
                                            ("peer", 0.0005 * rng.normal(), "")):
                rows.append({"task": task, "family": family, "model": "m" if family == "ssl" else "", "split": f"r0f{k}",
                             "spec": "x", "regressor": "krr", "test_mae": base + offset, "n_train": 80, "n_test": 20,
                             "n_variants": 3, "n_regressors": 1, "missing": missing, "seconds": 6.0})
    detail, gate, readme = tables(pd.DataFrame(rows), {"kong2023_log_kvrh": 10, "kong2023_log_gvrh": 10})
    assert "2 task(s) on 1 material set(s)" in detail
    assert "ssl wins" in detail and "no verdict (incomplete menu)" in detail and "incomplete: ofm pending" in detail
    assert gate.count("ssl wins") == 2
    row = next(line for line in detail.splitlines() if line.startswith("| kong2023_log_kvrh |"))
    cells = [c.strip() for c in row.strip("|").split("|")]  # task, vs handbuilt, vs authors, vs peer
    assert cells[1].startswith("no verdict") and cells[2].startswith("ssl wins")
    # one family of tests: the 6 pairs of the 4 families that ran, on 2 tasks; its size is stated
    assert "the 12 paired comparisons below" in detail and "Holm–Bonferroni over 12 comparisons" in readme
    # log K and log G are one material set: two task wins are one set win, counted once (one README row)
    header, _, *set_rows = [line for line in readme.splitlines() if line.startswith("|")]
    assert len(set_rows) == 1 and set_rows[0].startswith("| kong2023 elastic (log K, log G) |")
    cell = dict(zip([c.strip() for c in header.strip("|").split("|")],
                    [c.strip() for c in set_rows[0].strip("|").split("|")]))
    assert cell["ours vs authors"].startswith("ours wins (") and cell["ours vs handbuilt"].startswith("no verdict")


def _verdicts_module():
    import verdicts  # studies/ is on pytest's pythonpath

    return verdicts


def _rows(task: str, effects: dict[str, float], seed: int = 0, n: int = 10) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        base = 0.1 + 0.01 * rng.normal()
        rows += [{"task": task, "family": f, "model": "m" if f == "ssl" else "", "split": f"r0f{k}", "spec": "x",
                  "regressor": "krr", "test_mae": base + e + 0.002 * rng.normal(), "n_train": 80, "n_test": 20,
                  "n_variants": 3, "n_regressors": 1, "missing": "", "seconds": 1.0} for f, e in effects.items()]
    return rows


def test_headline_adjusts_over_every_comparison_and_tallies_sets_by_the_stated_rule():
    import pandas as pd

    v = _verdicts_module()
    assert ("ssl_inductive", "handbuilt") in v.COMPARISONS
    assert v.MATERIAL_SETS["magndata_site_moments_kong2023"] == v.MATERIAL_SETS["magndata_transition_temperature"]
    # log K: ssl clearly better; log G: ssl worse -> the elastic set is a tie, not a win and a loss
    results = pd.DataFrame(_rows("kong2023_log_kvrh", {"ssl": -0.03, "handbuilt": 0.0})
                           + _rows("kong2023_log_gvrh", {"ssl": 0.03, "handbuilt": 0.0}, seed=1))
    decided = v.all_comparisons(results, {})
    assert {c["family_size"] for c in decided.values()} == {2}
    kvrh = decided["kong2023_log_kvrh", "ssl", "handbuilt"]
    assert kvrh["p_holm"] >= kvrh["p"] and kvrh["verdict"] == "ssl wins"
    assert decided["kong2023_log_gvrh", "ssl", "handbuilt"]["verdict"] == "handbuilt wins"
    tallies = v.set_tallies(decided)[("ssl", "handbuilt")]
    assert [(name, verdict) for name, verdict, _ in tallies] == [("kong2023 elastic (log K, log G)", "tie")]


def test_history_keeps_every_row(tmp_path):
    import pandas as pd

    v = _verdicts_module()
    path = tmp_path / "history.csv"
    first = pd.DataFrame(_rows("kong2023_hse_gap", {"ssl": -0.03, "handbuilt": 0.0}))
    h1 = v.update_history(path, first, {})
    assert len(h1) == 1 and h1.verdict.iloc[0] == "ssl wins"
    assert len(v.update_history(path, first, {})) == 1  # the same verdict is not recorded twice
    later = pd.DataFrame(_rows("kong2023_hse_gap", {"ssl": 0.0, "handbuilt": 0.0}, seed=5))
    h2 = v.update_history(path, later, {})
    assert len(h2) == 2 and h2.verdict.iloc[0] == "ssl wins"  # the old row is kept, the new one added
    assert "| kong2023_hse_gap | ssl vs handbuilt |" in v.history_markdown(h2)


def test_results_on_disk_keep_their_menu_ids():
    """The shared API keys results exactly as the headline did (rows on disk stay valid), except where a
    descriptor's definition changed (the strictly inductive sine_coulomb: hand-built rows are recomputed)."""
    import hashlib
    import json

    from ssl_featurizer.bench.comparison import menu_id
    from ssl_featurizer.bench.families import declared_menu

    def old(variants, regressors, model):
        return hashlib.sha256(json.dumps([variants, list(regressors), model]).encode()).hexdigest()[:12]

    for family in ("ssl", "peer"):
        menu = declared_menu(family)
        assert menu_id(menu, ("krr", "krr_log"), "m") == old(menu, ("krr", "krr_log"), "m")
    hand = declared_menu("handbuilt")
    assert menu_id(hand, ("krr",), "") != old(hand, ("krr",), "")
    no_sine = [h for h in hand if "sine_coulomb" not in h]
    assert menu_id(no_sine, ("krr",), "") == old(no_sine, ("krr",), "")


def test_handbuilt_rows_do_not_depend_on_the_other_rows():
    """Strictly inductive: a structure's sine_coulomb and soap rows are the same alone and among larger cells."""
    from ssl_featurizer.bench.descriptors import HANDBUILT

    small = _structure(4.0, ("Na", "Cl"))
    big = Structure(Lattice.cubic(8.0), ["K"] * 4 + ["Br"] * 4 + ["O"],
                    [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 0.5],
                     [0, 0.5, 0], [0.5, 0, 0], [0.25, 0.25, 0.25]])
    names = ["sine_coulomb"]
    try:
        import dscribe  # noqa: F401

        names.append("soap")
    except ImportError:
        pass
    for name in names:
        alone = HANDBUILT[name]([small])
        among = HANDBUILT[name]([small, big])
        assert alone.shape[1] == among.shape[1]
        np.testing.assert_allclose(alone[0], among[0])
        assert not np.allclose(among[0], among[1])


def test_site_menus_are_built_in_full(tmp_path):
    from ssl_featurizer.bench.families import build_menu, declared_menu
    from ssl_featurizer.bench.tasks import Task

    s = _structure(4.0, ("Na", "Cl"))
    task = Task("sites", [(s, 0), (s, 1), (s.copy(), 0), (s.copy(), 1)], np.arange(1.0, 5.0), "site",
                np.array(["a", "a", "b", "b"]))
    menu, missing = build_menu("ssl", task, tmp_path)
    assert list(menu) == declared_menu("ssl", "site") and missing == []
    assert menu["ssl_site:012+element_site"].shape[0] == 4


def test_a_material_set_with_an_unfinished_task_is_pending():
    """A set's verdict never rests on part of it: log G finished, log K still running → the set is pending."""
    from verdicts import all_comparisons, set_tallies  # studies/ is on pytest's pythonpath
    rng = np.random.default_rng(1)
    rows = []
    for task, n_peer in (("kong2023_log_kvrh", 4), ("kong2023_log_gvrh", 10)):
        for k in range(10):
            base = 0.06 + 0.004 * rng.normal()
            for family, offset in (("ssl", 0.0), ("peer", 0.01)):
                if family == "peer" and k >= n_peer:
                    continue
                rows.append({"task": task, "family": family, "model": "", "split": f"r0f{k}", "spec": "x",
                             "regressor": "krr", "test_mae": base + offset, "n_train": 80, "n_test": 20,
                             "n_variants": 1, "n_regressors": 1, "missing": "", "seconds": 1.0})
    import pandas as pd

    results = pd.DataFrame(rows)
    decided = all_comparisons(results, {"kong2023_log_kvrh": 10, "kong2023_log_gvrh": 10})
    assert ("kong2023_log_gvrh", "ssl", "peer") in decided and ("kong2023_log_kvrh", "ssl", "peer") not in decided
    (name, verdict, _), = set_tallies(decided, ["kong2023_log_kvrh", "kong2023_log_gvrh"])[("ssl", "peer")]
    assert name == "kong2023 elastic (log K, log G)" and verdict == "pending"
    (_, verdict, _), = set_tallies(decided)[("ssl", "peer")]  # without the task list: judged on what finished
    assert verdict == "ssl wins"


def test_rows_of_an_earlier_menu_are_marked_and_targets_the_peers_have_seen_too():
    """A family whose rows on disk were scored with a menu other than the one declared now keeps its verdict, marked
    § with the family and tasks named; a peer comparison on a target the peers' training labels overlap is marked ‡."""
    import pandas as pd

    from ssl_featurizer.bench.comparison import menu_id
    from ssl_featurizer.bench.families import declared_menu, family_model

    verdicts = _verdicts_module()
    rng = np.random.default_rng(1)
    rows = []
    current = {f: menu_id(declared_menu(f), ("krr",), family_model(f) if f == "ssl" else "") for f in ("ssl", "peer")}
    for k in range(10):
        base = 0.1 + 0.004 * rng.normal()
        for family, offset, mid in (("ssl", 0.0, current["ssl"]), ("handbuilt", 0.02, "an-old-menu"),
                                    ("peer", -0.03, current["peer"])):
            rows.append({"task": "kong2023_formation_energy", "family": family, "menu_id": mid,
                         "model": family_model(family), "split": f"r0f{k}", "spec": "x", "regressor": "krr",
                         "test_mae": base + offset + 0.001 * rng.normal(), "n_train": 80, "n_test": 20,
                         "n_variants": 3, "n_regressors": 1, "missing": "", "seconds": 6.0})
    results = pd.DataFrame(rows)
    assert verdicts.earlier_menus(results) == {"handbuilt": ["kong2023_formation_energy"]}
    _, _, readme = verdicts.tables(results, {"kong2023_formation_energy": 10})
    header, _, row = [line for line in readme.splitlines() if line.startswith("|")][:3]
    cell = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    assert cell["ours vs handbuilt"].endswith(verdicts.EARLIER_MARK)
    assert cell["ours vs peer"].startswith("peer wins") and verdicts.SEEN_MARK in cell["ours vs peer"]
    assert verdicts.EARLIER_MARK not in cell["ours vs peer"]
    assert "handbuilt on kong2023_formation_energy" in readme
