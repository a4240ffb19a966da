"""``make demo``'s pipeline, shortened: pre-training with the kNN monitor, probes, PNGs (slow)."""
import json
from pathlib import Path

import pytest
from PIL import Image

from vissl_pirl_plugin.tools.demo_data import build_demo_dataset

from test_demo_data import fake_stamps
from test_training_e2e import run

pytestmark = pytest.mark.slow


def test_shortened_demo_pretrains_probes_and_writes_the_png(tmp_path):
    build_demo_dataset(tmp_path / "data", stamps=fake_stamps(tmp_path / "stamps", per_class=4))
    result = run(["-m", "vissl_pirl_plugin.tools.demo", "--data", str(tmp_path / "data"),
                  "--out", str(tmp_path / "runs"), "--transforms", "2",
                  "config.OPTIMIZER.num_epochs=2", "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=4",
                  "config.LOSS.pirl_loss.num_negatives=8", "config.DATA.NUM_DATALOADER_WORKERS=0"],
                 cwd=tmp_path)
    lines = result.stdout.splitlines()
    table = lines[lines.index("epoch  mean loss  (pirl_loss, one CPU process)") + 1]
    assert table.split()[0] == "0" and float(table.split()[1]) > 0
    for probe in ("category", "identity"):
        assert any(line.startswith(f"{probe} probe, best stage: PIRL ") and "vs random init" in line
                   for line in lines)
    knn_table = lines.index(next(line for line in lines if line.startswith("epoch  kNN top-1")))
    # 5 classes x 4 photographs: 1 of each held out, 15 in the bank; evaluated after epoch 2
    assert "5 held-out photographs" in lines[knn_table]
    epoch, top1, top5, _ = lines[knn_table + 1].split()
    assert epoch == "2" and 0 <= float(top1) <= float(top5) == 1.0
    png, knn_png = (Path(next(line for line in lines if line.startswith(start)).split(": ", 1)[1])
                    for start in ("Invariance histogram", "kNN accuracy against epoch"))
    assert knn_png.parent == png.parent
    for picture in (png, knn_png):
        with Image.open(picture) as image:
            image.verify()
        with Image.open(picture) as image:
            assert image.format == "PNG"
    results = json.loads((png.parent / "demo_results.json").read_text())
    assert set(results["probes"]) == {"pirl", "random_init"}
    assert set(results["invariance"]) == {"PIRL", "random initialisation"}
    assert sorted(int(epoch) for epoch in results["epoch_losses"]) == [0, 1]
    assert [record["epoch"] for record in results["knn"]] == [2]
