"""The comparison harness (``make compare``): its plumbing fast, one tiny run of every method slow."""
import json
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import compare_methods  # noqa: E402

from test_demo_data import fake_stamps  # noqa: E402


def fake_run(category: float, knn: float) -> dict:
    stages = {"res3": category, "res4": category + 0.1, "res5": category + 0.2}
    return {"knn_top1": knn, "invariance_trunk": {"mean": 0.5, "std": 0.1},
            "probes": {"category": stages, "identity": {k: v / 2 for k, v in stages.items()}},
            "final_loss": 3.0}


def test_the_summary_is_the_mean_and_range_over_the_seeds_and_the_figure_is_drawn(tmp_path):
    runs = {"pirl": {"0": fake_run(0.5, 0.6), "1": fake_run(0.6, 0.4)},
            "random": {"0": fake_run(0.4, 0.3)}}
    summary = compare_methods.summarize(runs)
    assert summary["pirl"]["category_res5"] == pytest.approx({"mean": 0.75, "min": 0.7,
                                                              "max": 0.8})
    assert summary["pirl"]["knn_top1"] == pytest.approx({"mean": 0.5, "min": 0.4, "max": 0.6})
    assert set(summary["random"]) == {"knn_top1", "invariance_trunk", "final_loss",
                                      *(f"{p}_{s}" for p in ("category", "identity")
                                        for s in ("res3", "res4", "res5"))}
    table = compare_methods.markdown_table(summary).splitlines()
    assert table[0] == "| measurement | pirl | random |"
    assert "| category probe, res5 | 0.750 [0.700, 0.800] | 0.600 [0.600, 0.600] |" in table
    assert "| invariance, f(v_I) against g(v_It) (l2, Fig. 4) | — | — |" in table
    png = compare_methods.plot_by_stage(summary, tmp_path / "fig.png", [0, 1])
    with Image.open(png) as image:
        assert image.size[0] > 100


def test_jigsaws_permutations_are_vissls_zero_based_maximal_hamming_orders(tmp_path):
    path = compare_methods.write_permutations(tmp_path / "perms.npy", count=30)
    permutations = np.load(path)
    assert permutations.shape == (30, 9)
    assert all(sorted(order) == list(range(9)) for order in permutations.tolist())
    assert len({tuple(order) for order in permutations.tolist()}) == 30


def test_every_method_but_the_random_trunk_is_trained_at_the_demos_epochs(tmp_path):
    for method in compare_methods.METHODS:
        run = compare_methods.method_run(method, tmp_path, num_images=134, epochs=7,
                                         negatives=9)
        assert (run is None) == (method == "random"), method
        if run is not None:
            assert "config.OPTIMIZER.num_epochs=7" in run, method
    npid = compare_methods.method_run("npid_plusplus", tmp_path, 134, 7, 9)
    assert npid[0] == compare_methods.DEMO_CONFIG
    assert npid[-2:] == ["config.LOSS.pirl_loss.num_negatives=9",
                         "config.LOSS.pirl_loss.lambda_weight=0.0"]
    vissl = compare_methods.method_run("vissl_pirl", tmp_path, 134, 7, 9)
    assert "config.LOSS.nce_loss_with_memory.negative_sampling_params.num_negatives=9" in vissl
    jigsaw = compare_methods.method_run("jigsaw", tmp_path, 134, 7, 9)
    assert jigsaw[0] == compare_methods.JIGSAW_CONFIG
    assert any(f"perm_file:{tmp_path / 'permutations.npy'}" in override for override in jigsaw)
    assert any("[mlp,{dims:[1152,100]}]" in override for override in jigsaw)


def test_ranks_share_the_demos_global_batch():
    assert compare_methods.rank_overrides(1, 32) == []
    assert compare_methods.rank_overrides(2, 32) == [
        "config.DISTRIBUTED.NUM_PROC_PER_NODE=2", "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=16"]
    with pytest.raises(ValueError, match="--ranks 3: the global batch of 32 must split evenly"):
        compare_methods.rank_overrides(3, 32)


def test_with_crops_every_method_pre_trains_on_the_crops_and_is_measured_on_the_photographs(
        tmp_path, monkeypatch):
    stamps = fake_stamps(tmp_path / "stamps", per_class=5)
    pretrained, measured = [], []

    def pretrain(overrides, data, run_dir, seed):
        pretrained.append((overrides, data))
        run_dir.mkdir(parents=True)
        (run_dir / "stdout.json").write_text(json.dumps({"ep": 0, "loss": 2.0}))
        return run_dir / "checkpoint.torch"

    def evaluate(method, config, checkpoint, view_config, images, train, val, *args):
        measured.append((images, train))
        return fake_run(0.5, 0.5)
    monkeypatch.setattr(compare_methods, "pretrain", pretrain)
    monkeypatch.setattr(compare_methods, "evaluate", evaluate)
    monkeypatch.setattr(compare_methods, "config_beside", lambda checkpoint: checkpoint)
    monkeypatch.setattr(compare_methods, "run_config", lambda path: None)
    results = compare_methods.main([
        "--data", str(tmp_path / "data"), "--stamps", str(stamps), "--out", str(tmp_path / "out"),
        "--methods", "pirl", "vissl_pirl", "random", "--seeds", "0", "--crops", "3"])
    crops = tmp_path / "out" / "crops_3"
    # 25 photographs, every 5th of each class held out: 20 pre-train, as 60 crops
    assert results["crops"] == 3 and results["num_images"] == 60
    assert len(list((crops / "all").glob("*.jpg"))) == 60
    assert [data for _, data in pretrained] == [crops, crops]
    assert "config.LOSS.nce_loss_with_memory.num_train_samples=60" in pretrained[1][0]
    split = tmp_path / "out" / "split"
    assert measured == [((tmp_path / "data" / "train").resolve(), split / "train")] * 3


@pytest.mark.slow
def test_one_tiny_run_of_every_method_gives_every_measurement(tmp_path):
    data = tmp_path / "data"
    from vissl_pirl_plugin.tools.demo_data import build_demo_dataset
    build_demo_dataset(data, stamps=fake_stamps(tmp_path / "stamps", per_class=4))
    results = compare_methods.main([
        "--data", str(data), "--out", str(tmp_path / "out"), "--seeds", "0", "--epochs", "1",
        "--transforms", "1", "--negatives", "8", "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=4",
        "config.DATA.NUM_DATALOADER_WORKERS=0"])
    assert set(results["runs"]) == set(compare_methods.METHODS)
    for method, by_seed in results["runs"].items():
        values = compare_methods.metric_values(by_seed["0"])
        assert 0 <= values["knn_top1"] <= 1 and 0 <= values["category_res5"] <= 1, method
        assert ("invariance_heads" in values) == (method in ("pirl", "vissl_pirl", "random"))
        assert ("final_loss" in values) == (method != "random")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["summary"].keys() == results["summary"].keys()
    assert (tmp_path / "out" / "fig5_probes_by_stage.png").is_file()
