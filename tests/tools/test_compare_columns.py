"""``benchmarks/compare_columns.py``: make compare results side by side, with the permutation
test of each column's mean against the first's."""
import json
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import compare_columns  # noqa: E402

from test_compare_methods import fake_run  # noqa: E402


def results(folder, categories, method="pirl"):
    folder.mkdir(parents=True)
    runs = {str(seed): fake_run(category, 0.5) for seed, category in enumerate(categories)}
    (folder / "results.json").write_text(json.dumps({"runs": {method: runs}}))
    return folder


def test_columns_show_the_range_and_the_exact_permutation_test_of_the_mean(tmp_path):
    one = results(tmp_path / "one", [0.5, 0.6, 0.7])
    two = results(tmp_path / "two", [0.8, 0.9, 1.0])
    same = results(tmp_path / "same", [0.7, 0.5, 0.6])
    text = compare_columns.main([f"1 process={one}", f"2 ranks={two}", f"again={same}"])
    lines = text.splitlines()
    assert lines[0] == "| measurement | 1 process (3 seeds) | 2 ranks (3 seeds) | again (3 seeds) |"
    assert ("| category probe, res3 | 0.600 [0.500, 0.700] | 0.900 [0.800, 1.000] | "
            "0.600 [0.500, 0.700] |") in lines
    # 20 ways to split six seeds in threes; only the observed split and its mirror part the
    # means by 0.3
    assert "| category probe, res3 | +0.300 (p = 0.10) | +0.000 (p = 1.00) |" in lines
    assert "| loss, last epoch | +0.000 (p = 1.00) | +0.000 (p = 1.00) |" in lines
    assert not any("Fig. 4" in line for line in lines)  # a row no column measured


def test_a_column_pools_the_seeds_of_its_folders(tmp_path):
    one = results(tmp_path / "one", [0.5, 0.6])
    two, four = results(tmp_path / "two", [0.6]), results(tmp_path / "four", [0.9, 0.3])
    lines = compare_columns.main([f"one={one}", f"more ranks={two}+{four}"]).splitlines()
    assert lines[0] == "| measurement | one (2 seeds) | more ranks (3 seeds) |"
    assert "| category probe, res3 | 0.550 [0.500, 0.600] | 0.600 [0.300, 0.900] |" in lines


def test_many_seeds_are_tested_on_sampled_splits():
    apart = compare_columns.permutation_p([0.0] * 12, [1.0] * 12)
    assert apart < 1e-3  # C(24, 12) = 2.7 million splits: sampled, none parts them as far
    assert compare_columns.permutation_p([0.1, 0.2] * 6, [0.2, 0.1] * 6) == 1.0


def test_bad_columns_are_refused_with_the_fix(tmp_path, capsys):
    one = results(tmp_path / "one", [0.5])
    for argv, message in (([f"a={one}", f"b={tmp_path / 'none'}"], "whose run has finished"),
                          ([f"a={one}", str(one)], "LABEL=DIR"),
                          ([f"a={one}", f"a={one}"], "names two columns"),
                          ([f"a={one}", f"b={one}", "--method", "jigsaw"], "has no runs of"),
                          ([f"a={one}"], "at least two columns")):
        with pytest.raises(SystemExit):
            compare_columns.main(argv)
        assert message in capsys.readouterr().err
