"""``benchmarks/compare_columns.py``: make compare results side by side, with the permutation
test of each column's mean against the first's."""
import json
import random
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import compare_columns  # noqa: E402

from test_compare_methods import fake_run  # noqa: E402


def results(folder, categories, method="pirl", heads=None):
    folder.mkdir(parents=True)
    runs = {str(seed): fake_run(category, 0.5) for seed, category in enumerate(categories)}
    if heads is not None:
        for run in runs.values():
            run["invariance_heads"] = {"mean": heads, "std": 0.1}
    (folder / "results.json").write_text(json.dumps({"runs": {method: runs}}))
    return folder


def test_columns_show_the_range_and_the_exact_permutation_test_of_the_mean(tmp_path):
    one = results(tmp_path / "one", [0.5, 0.6, 0.7], heads=0.8)
    two = results(tmp_path / "two", [0.8, 0.9, 1.0], heads=0.9)
    same = results(tmp_path / "same", [0.7, 0.5, 0.6])  # an older run: no Fig. 4 measurement
    lines = compare_columns.main([f"1 process={one}", f"2 ranks={two}",
                                  f"again={same}"]).splitlines()
    assert lines[0] == "| measurement | 1 process (3 seeds) | 2 ranks (3 seeds) | again (3 seeds) |"
    assert ("| category probe, res3 | 0.600 [0.500, 0.700] | 0.900 [0.800, 1.000] | "
            "0.600 [0.500, 0.700] |") in lines
    assert ("| invariance, f(v_I) against g(v_It) (l2, Fig. 4) | 0.800 [0.800, 0.800] | "
            "0.900 [0.900, 0.900] | — |") in lines
    assert ("| difference from 1 process (permutation p) | 2 ranks (smallest p 0.1) | "
            "again (smallest p 0.1) |") in lines
    # 20 ways to split six seeds in threes; only the observed split and its mirror part the
    # means by 0.3
    assert "| category probe, res3 | +0.300 (p = 0.10) | +0.000 (p = 1.00) |" in lines
    assert "| loss, last epoch | +0.000 (p = 1.00) | +0.000 (p = 1.00) |" in lines
    assert "| invariance, f(v_I) against g(v_It) (l2, Fig. 4) | +0.100 (p = 0.10) | — |" in lines

    # 286 ways to take 3 of 13 seeds; the observed split and its mirror part the means by 6.5
    assert compare_columns.difference_cell([float(v) for v in range(10)],
                                           [10.0, 11.0, 12.0]) == "+6.500 (p = 0.007)"


def test_a_column_pools_the_seeds_of_its_folders(tmp_path):
    one = results(tmp_path / "one", [0.5, 0.6])
    two, four = results(tmp_path / "two", [0.6]), results(tmp_path / "four", [0.9, 0.3])
    lines = compare_columns.main([f"one={one}", f"more ranks={two}+{four}"]).splitlines()
    assert lines[0] == "| measurement | one (2 seeds) | more ranks (3 seeds) |"
    assert "| category probe, res3 | 0.550 [0.500, 0.600] | 0.600 [0.300, 0.900] |" in lines


def test_sampled_splits_agree_with_every_split(monkeypatch):
    draws = random.Random(3)
    first = [draws.gauss(0.0, 1.0) for _ in range(7)]
    other = [draws.gauss(0.8, 1.0) for _ in range(6)]
    exact = compare_columns.permutation_p(first, other)  # C(13, 6) = 1,716 splits
    assert 0.02 < exact < 0.9
    monkeypatch.setattr(compare_columns, "EXACT_LIMIT", 0)
    sampled = compare_columns.permutation_p(first, other)
    assert sampled != exact and sampled == pytest.approx(exact, abs=0.01)  # 5 sd at 100,000


def test_far_apart_groups_and_large_values():
    assert compare_columns.permutation_p([0.0] * 12, [1.0] * 12) < 1e-4  # sampled, none as far
    big = 1e6
    assert compare_columns.permutation_p([big + 0.5, big + 0.6, big + 0.7],
                                         [big + 0.8, big + 0.9, big + 1.0]) == pytest.approx(0.1)
    assert compare_columns.smallest_p(3, 3) == pytest.approx(0.1)
    assert compare_columns.smallest_p(5, 8) == pytest.approx(1 / 1287)


def test_bad_columns_are_refused_with_the_fix(tmp_path, capsys):
    one = results(tmp_path / "one", [0.5])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{")
    empty = results(tmp_path / "empty", [])
    for argv, message in (([f"a={one}", f"b={tmp_path / 'none'}"], "whose run has finished"),
                          ([f"a={one}", str(one)], "LABEL=DIR"),
                          ([f"a={one}", f"b={one}+"], "LABEL=DIR"),
                          ([f"a={one}", f"a={one}"], "names two columns"),
                          ([f"a={one}", f"b={tmp_path / 'broken'}"], "is not a `make compare`"),
                          ([f"a={one}", f"b={empty}"], "has no runs of"),
                          ([f"a={one}", f"b={one}", "--method", "jigsaw"], "has no runs of"),
                          ([f"a={one}"], "at least two columns")):
        with pytest.raises(SystemExit):
            compare_columns.main(argv)
        assert message in capsys.readouterr().err
