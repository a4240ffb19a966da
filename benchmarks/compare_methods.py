"""``make compare``: the paper's comparison in miniature (§4, Fig. 5), method against method at
equal budget, over several seeds.

    .venv/bin/python benchmarks/compare_methods.py [--seeds 0 1 2] [--methods ...]
        [--out benchmarks/compare] [--epochs N] [--transforms 5] [--ranks 1] [--crops K]
        [--stamps DIR]
        [Hydra overrides for all runs]

Every method pre-trains on the demo's training split (``make demo``'s: 134 of the 169 labelled
photographs, every 5th of each class held out) with the CPU demo config's trunk (ResNet-10 of
width 32), image size, batch, epochs, optimizer and schedule (``METHODS``). With ``--crops K``
they pre-train instead on K random crops of each training photograph's stamp
(``vissl_pirl_plugin.tools.demo_crops``: K times the images and steps per epoch), and are
measured on the photographs as always:

1. ``pirl``: ours, ``config=pretrain/pirl/pirl_jigsaw_cpu_demo`` as it is;
2. ``vissl_pirl``: VISSL 0.1.6's built-in PIRL, its ``nce_loss_with_memory``, transform chain
   (``ImgPilToPatchesAndImage``, ``ColorJitter``, flips: the demo's recipe, ``VISSL_PIRL_TRANSFORMS``),
   ``patch_and_image_collator`` and heads, at the demo's sizes;
3. ``npid_plusplus``: ours with lambda = 0 (paper §4: NPID is PIRL at lambda = 0, NPID++ its
   version with more negatives and epochs), the same negatives and epochs as ``pirl`` (its
   unused jigsaw head is computed, and gets no gradient);
4. ``jigsaw``: VISSL's own covariant Jigsaw (``config=pretrain/jigsaw/jigsaw_8gpu_resnet``):
   the 9 shuffled patches' order classified among ``JIGSAW_PERMUTATIONS`` maximal-Hamming
   permutations, at the demo's sizes;
5. ``random``: the trunk at its random initialisation (no training).

Each trained (or random) trunk is then measured alike, with the demo config's views:

* ``knn_top1``: the held-out photographs classified by their 20 nearest training photographs
  (cosine similarity of average-pooled res5 features of centre crops, votes weighted
  ``exp(s / 0.07)``, NPID's rule);
* ``category`` and ``identity`` linear probes at res3, res4 and res5
  (``vissl_pirl_plugin.tools.linear_probe`` on all 169 photographs, ``view_config`` the demo's);
* ``invariance_trunk``: the l2 distance between the unit-norm res5 feature of the image view
  v_I and the unit-norm mean res5 feature of the 9 patches of its jigsaw view v_It (the demo's
  transform), averaged over images and ``--transforms`` draws: one measure for every method;
  and, for the PIRL models, ``invariance_heads``: the paper's Fig. 4 distance of f(v_I) and
  g(v_It) (``vissl_pirl_plugin.tools.invariance``).

Writes ``results.json`` (every run and the mean, min and max over the seeds) and
``fig5_probes_by_stage.png`` (probe accuracy by stage for each method, the seeds' range
shaded, as the paper's Fig. 5) to ``--out``.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import vissl_pirl_plugin  # noqa: E402,F401 - applies vissl_compat before VISSL is imported
from vissl.data.ssl_transforms import get_transform  # noqa: E402
from vissl.utils.hydra_config import AttrDict  # noqa: E402

from vissl_pirl_plugin.data.image_folder import folder_image_count  # noqa: E402
from vissl_pirl_plugin.data.image_utils import centre_crop  # noqa: E402
from vissl_pirl_plugin.data.robust_disk_dataset import read_image_folder  # noqa: E402
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import (  # noqa: E402
    IMAGENET_MEAN, IMAGENET_STD)
from vissl_pirl_plugin.data.transforms.common.permutations import permutation_set  # noqa: E402
from vissl_pirl_plugin.engine.launcher import compose_config  # noqa: E402
from vissl_pirl_plugin.losses.knn_classifier import (  # noqa: E402
    bank_top_k, top_k_accuracy, weighted_vote)
from vissl_pirl_plugin.tools.demo import DEMO_CONFIG, hold_out  # noqa: E402
from vissl_pirl_plugin.tools.demo_crops import build_crop_set  # noqa: E402
from vissl_pirl_plugin.tools.demo_data import DEMO_ROOT, build_demo_dataset  # noqa: E402
from vissl_pirl_plugin.tools.invariance import invariance_distances  # noqa: E402
from vissl_pirl_plugin.tools.linear_probe import (  # noqa: E402
    PROBES, STAGES, extract_features, run_probes)
from vissl_pirl_plugin.tools.plotting import new_axes, save_png  # noqa: E402
from vissl_pirl_plugin.tools.trained_model import config_beside, load_model, run_config  # noqa: E402

KNN_K, KNN_TEMPERATURE = 20, 0.07  # the demo's kNN monitor: k = 20 for a bank of 134
JIGSAW_PERMUTATIONS = 100
HOLDOUT_EVERY = 5
PIRL_METHODS = ("pirl", "vissl_pirl")


VISSL_PIRL_TRANSFORMS = (  # VISSL 0.1.6's PIRL chain with the demo's recipe (its PIL photometric
    # ops and grayscale left out, as the demo config leaves them out); 117-px jigsaw crops: its
    # patches are a 39-px cell less its fixed jitter of 21, so 18 px as the demo's
    # (img_pil_to_patches_and_image.py)
    "[{name:ImgPilToPatchesAndImage,crop_scale_image:[0.08,1.0],crop_size_image:64,"
    "crop_scale_patches:[0.6,1.0],crop_size_patches:117,num_patches:9},"
    "{name:ColorJitter,brightness:0.4,contrast:0.4,saturation:0.4,hue:0.2},"
    "{name:RandomHorizontalFlip},"
    "{name:ToTensor},{name:Normalize,mean:[0.485,0.456,0.406],std:[0.229,0.224,0.225]}]")


def vissl_pirl_overrides(num_images: int, negatives: int) -> List[str]:
    """VISSL 0.1.6's built-in PIRL on the demo config: its loss (``cross_entropy``, its InfoNCE,
    as the demo's ``infonce``; the demo's negatives), transform chain, collator and heads."""
    loss = "config.LOSS.nce_loss_with_memory"
    return [f"config.DATA.TRAIN.TRANSFORMS={VISSL_PIRL_TRANSFORMS}",
            "config.DATA.TRAIN.COLLATE_FUNCTION=patch_and_image_collator",
            "~config.DATA.TRAIN.COLLATE_FUNCTION_PARAMS.transformed_key",
            "config.MODEL.HEAD.PARAMS=[[[mlp,{dims:[256,128],use_bn:false,use_relu:false}],"
            "[siamese_concat_view,{num_towers:9}],[mlp,{dims:[1152,128]}]],"
            "[[mlp,{dims:[256,128]}]]]",
            "config.LOSS.name=nce_loss_with_memory", f"{loss}.loss_type=cross_entropy",
            f"+{loss}.ignore_index=-1", f"{loss}.norm_embedding=true", f"{loss}.temperature=0.07",
            f"{loss}.loss_weights=[0.5,0.5]", f"{loss}.norm_constant=-1",
            f"{loss}.update_mem_with_emb_index=1",
            f"{loss}.negative_sampling_params.num_negatives={negatives}",
            f"{loss}.negative_sampling_params.type=random",
            f"{loss}.memory_params.memory_size={num_images}",
            f"{loss}.memory_params.embedding_dim=128", f"{loss}.memory_params.momentum=0.5",
            f"{loss}.memory_params.norm_init=true",
            f"{loss}.memory_params.update_mem_on_forward=false",
            f"{loss}.num_train_samples={num_images}"]


def jigsaw_overrides(permutations: Path, epochs: int) -> List[str]:
    """VISSL 0.1.6's covariant Jigsaw (its own config) at the demo's trunk, sizes (images
    resized to 64, 63-px crops, 18-px patches), batch, epochs and learning-rate schedule,
    classifying ``permutations``."""
    count = len(np.load(permutations))
    return ["config.LOG_FREQUENCY=4", "config.MULTI_PROCESSING_METHOD=fork",
            "config.DATA.NUM_DATALOADER_WORKERS=1", "config.DATA.TRAIN.DROP_LAST=true",
            "config.DATA.TRAIN.MMAP_MODE=false",
            "config.DATA.TRAIN.TRANSFORMS=[{name:Resize,size:64},{name:RandomHorizontalFlip},"
            "{name:RandomCrop,size:63},{name:RandomGrayscale,p:0.66},{name:ToTensor},"
            "{name:Normalize,mean:[0.485,0.456,0.406],std:[0.229,0.224,0.225]},"
            "{name:ImgPatchesFromTensor,num_patches:9,patch_jitter:3},"
            f"{{name:ShuffleImgPatches,perm_file:{permutations}}}]",
            "config.MODEL.TRUNK.NAME=resnet_small", "+config.MODEL.TRUNK.RESNET_SMALL.DEPTH=10",
            "+config.MODEL.TRUNK.RESNET_SMALL.WIDTH=32",
            "config.MODEL.HEAD.PARAMS=[[mlp,{dims:[256,128],use_bn:true,use_relu:true,"
            "skip_last_layer_relu_bn:false}],[siamese_concat_view,{num_towers:9}],"
            f"[mlp,{{dims:[1152,{count}]}}]]",
            f"config.OPTIMIZER.num_epochs={epochs}",
            "config.OPTIMIZER.param_schedulers.lr.name=cosine",
            "config.OPTIMIZER.param_schedulers.lr.start_value=0.1",
            "config.OPTIMIZER.param_schedulers.lr.end_value=0.01",
            "config.OPTIMIZER.param_schedulers.lr.auto_lr_scaling.auto_scale=false",
            "config.OPTIMIZER.param_schedulers.lr.update_interval=epoch",
            "config.CHECKPOINT.CHECKPOINT_FREQUENCY=50", "config.DISTRIBUTED.BACKEND=gloo",
            "config.DISTRIBUTED.NUM_NODES=1", "config.DISTRIBUTED.NUM_PROC_PER_NODE=1",
            "config.MACHINE.DEVICE=cpu"]


def write_permutations(path: Path, count: int = JIGSAW_PERMUTATIONS) -> Path:
    """The maximal-Hamming permutation set of Noroozi & Favaro as VISSL's ``ShuffleImgPatches``
    reads it (a .npy of 0-based patch orders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, permutation_set(count, 9, 0, "maxhamming").numpy())
    return path


JIGSAW_CONFIG = "config=pretrain/jigsaw/jigsaw_8gpu_resnet"
METHODS = ("pirl", "vissl_pirl", "npid_plusplus", "jigsaw", "random")


def method_run(method: str, out: Path, num_images: int, epochs: int,
               negatives: int) -> Optional[List[str]]:
    """The config and Hydra overrides of ``method``'s pre-training; None: not trained."""
    if method == "random":
        return None
    if method == "jigsaw":
        return [JIGSAW_CONFIG, *jigsaw_overrides(write_permutations(out / "permutations.npy"),
                                                 epochs)]
    return [DEMO_CONFIG, f"config.OPTIMIZER.num_epochs={epochs}",
            f"config.LOSS.pirl_loss.num_negatives={negatives}", *{
                "pirl": [], "vissl_pirl": vissl_pirl_overrides(num_images, negatives),
                "npid_plusplus": ["config.LOSS.pirl_loss.lambda_weight=0.0"]}[method]]


def rank_overrides(ranks: int, batch: int) -> List[str]:
    """``ranks`` gloo processes sharing the global ``batch`` (equal budget at any rank count)."""
    if ranks < 1 or batch % ranks:
        raise ValueError(f"--ranks {ranks}: the global batch of {batch} must split evenly across "
                         "the ranks; choose a divisor of it")
    if ranks == 1:
        return []
    return [f"config.DISTRIBUTED.NUM_PROC_PER_NODE={ranks}",
            f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch // ranks}"]


def pretrain(overrides: List[str], data: Path, run_dir: Path, seed: int) -> Path:
    """One pre-training through the plugin's launcher, in a child process; its checkpoint."""
    command = [sys.executable, "-m", "vissl_pirl_plugin.engine.launcher", *overrides[:1],
               f"config.DATA.TRAIN.DATA_PATHS=[{data}]", f"config.CHECKPOINT.DIR={run_dir}",
               f"config.SEED_VALUE={seed}", *overrides[1:]]
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    return (run_dir / "checkpoint.torch").resolve()


def centre_view(view_config: AttrDict) -> Callable:
    """The centre crop at the image crop size of ``view_config``'s PIRL transform, normalised."""
    crop = int(view_config.DATA.TRAIN.TRANSFORMS[0]["image_crop_size"])
    return centre_crop(crop, crop, IMAGENET_MEAN, IMAGENET_STD)


def knn_top1(trunk: torch.nn.Module, view_config: AttrDict, train: Path, val: Path) -> float:
    """Held-out photographs classified by their nearest training photographs (res5)."""
    view = centre_view(view_config)
    sides = []
    for folder in (train, val):
        photos, labels = read_image_folder(folder)
        features = extract_features(trunk, photos, view, ("res5",), f"kNN features ({folder.name})")
        sides.append((torch.nn.functional.normalize(torch.from_numpy(features["res5"]), dim=1),
                      torch.tensor(labels)))
    (bank, bank_labels), (queries, labels) = sides
    similarities, neighbours = bank_top_k(queries, bank, KNN_K)
    votes = weighted_vote(similarities, bank_labels[neighbours], int(bank_labels.max()) + 1,
                          KNN_TEMPERATURE)
    return float(top_k_accuracy(votes, labels, (1,))[1])


@torch.no_grad()
def trunk_invariance(trunk: torch.nn.Module, view_config: AttrDict, photos: Sequence,
                     transforms: int, seed: int) -> Dict[str, float]:
    """Mean and std of the l2 distance between the unit-norm res5 feature of v_I and the
    unit-norm mean res5 feature of v_It's patches, for the demo's transform."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    transform = get_transform(view_config.DATA.TRAIN.TRANSFORMS)
    distances = []
    for index, photo in enumerate(photos):
        for _ in range(transforms):
            image, patches = transform({"data": [photo], "label": [index], "data_valid": [1],
                                        "data_idx": [index]})["data"][0]
            image_feature = trunk(image[None], out_feat_keys=["res5"])[0].mean(dim=(2, 3))
            patch_feature = trunk(patches, out_feat_keys=["res5"])[0].mean(dim=(2, 3)).mean(0)
            distances.append(float((torch.nn.functional.normalize(image_feature[0], dim=0)
                                    - torch.nn.functional.normalize(patch_feature, dim=0)).norm()))
    return {"mean": float(np.mean(distances)), "std": float(np.std(distances))}


def evaluate(method: str, config: AttrDict, checkpoint: Optional[Path], view_config: AttrDict,
             images: Path, train: Path, val: Path, seed: int, transforms: int) -> Dict[str, Any]:
    """Every measurement of one trained (or random) model."""
    trunk = load_model(config, checkpoint, seed=seed).trunk
    photos, _ = read_image_folder(images)
    result: Dict[str, Any] = {
        "knn_top1": knn_top1(trunk, view_config, train, val),
        "probes": run_probes(config, checkpoint, images, seed=seed, view_config=view_config),
        "invariance_trunk": trunk_invariance(trunk, view_config, photos, transforms, seed)}
    if method in PIRL_METHODS or method == "random":
        head_config = config if method in PIRL_METHODS else view_config
        distances = invariance_distances(head_config, checkpoint, photos, transforms, seed)
        result["invariance_heads"] = {"mean": float(distances.mean()),
                                      "std": float(distances.std())}
    return result


def metric_values(run: Dict[str, Any]) -> Dict[str, float]:
    """The run's scalar measurements, flattened (``category_res3``, ..., ``knn_top1``)."""
    values = {"knn_top1": run["knn_top1"], "invariance_trunk": run["invariance_trunk"]["mean"]}
    if "invariance_heads" in run:
        values["invariance_heads"] = run["invariance_heads"]["mean"]
    for probe, stages in run["probes"].items():
        values.update({f"{probe}_{stage}": accuracy for stage, accuracy in stages.items()})
    if "final_loss" in run:
        values["final_loss"] = run["final_loss"]
    return values


def value_ranges(values: Sequence[Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """``{metric: {mean, min, max}}`` over runs' ``metric_values``, the metrics all runs have."""
    keys = [key for key in values[0] if all(key in v for v in values)]
    return {key: {"mean": statistics.fmean(v[key] for v in values),
                  "min": min(v[key] for v in values), "max": max(v[key] for v in values)}
            for key in keys}


def summarize(runs: Dict[str, Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{method: {metric: {mean, min, max}}}`` over the seeds."""
    return {method: value_ranges([metric_values(run) for run in by_seed.values()])
            for method, by_seed in runs.items()}


TABLE_ROWS = (("knn_top1", "kNN top-1, 35 held-out photographs (res5)"),
              *((f"{probe}_{stage}", f"{probe} probe, {stage}") for probe in PROBES
                for stage in STAGES),
              ("invariance_trunk", "invariance, res5 of v_I against v_It's patches (l2)"),
              ("invariance_heads", "invariance, f(v_I) against g(v_It) (l2, Fig. 4)"),
              ("final_loss", "loss, last epoch"))


MISSING = "—"  # a table's cell for a measurement that a column did not make


def markdown_table(summary: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """Mean and [min, max] over the seeds, a row per measurement, a column per method."""
    methods = list(summary)
    lines = ["| measurement | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for key, label in TABLE_ROWS:
        cells = [(f"{summary[m][key]['mean']:.3f} [{summary[m][key]['min']:.3f}, "
                  f"{summary[m][key]['max']:.3f}]") if key in summary[m] else MISSING
                 for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_by_stage(summary: Dict[str, Dict[str, Dict[str, float]]], out: Path,
                  seeds: Sequence[int]) -> Path:
    """The paper's Fig. 5 in miniature: each probe's accuracy by stage, a line per method with
    the seeds' range shaded."""
    figure, axes = new_axes()
    positions = np.arange(len(STAGES))
    for probe, style in zip(PROBES, ("-", "--")):
        for index, (method, metrics) in enumerate(summary.items()):
            keys = [f"{probe}_{stage}" for stage in STAGES]
            mean = [metrics[key]["mean"] for key in keys]
            colour = f"C{index}"  # one colour per method, a line style per probe
            axes.plot(positions, mean, style, marker="o", color=colour, label=f"{method}, {probe}")
            axes.fill_between(positions, [metrics[key]["min"] for key in keys],
                              [metrics[key]["max"] for key in keys], alpha=0.15, color=colour)
    axes.set_xticks(positions, STAGES)
    axes.set_xlabel("trunk stage")
    axes.set_ylabel("linear probe accuracy (solid: category, dashed: identity)")
    return save_png(figure, axes, f"probes by stage, seeds {list(seeds)} (mean, range shaded)",
                    out)


def final_loss(run_dir: Path) -> Optional[float]:
    """The mean loss of the last logged epoch."""
    records = [json.loads(line) for line in (run_dir / "stdout.json").read_text().splitlines()]
    records = [record for record in records if "loss" in record]
    last = max(int(record["ep"]) for record in records)
    return statistics.fmean(float(r["loss"]) for r in records if int(r["ep"]) == last)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "compare")
    parser.add_argument("--data", type=Path, default=DEMO_ROOT)
    parser.add_argument("--epochs", type=int, default=None,
                        help="pre-training epochs (default: the demo config's)")
    parser.add_argument("--negatives", type=int, default=None,
                        help="negatives of the PIRL and NPID++ losses (default: the demo config's)")
    parser.add_argument("--transforms", type=int, default=5,
                        help="transform draws per photograph for the invariance distances")
    parser.add_argument("--ranks", type=int, default=1,
                        help="gloo processes per pre-training, the global batch kept (the demo "
                             "config's batch split across the ranks)")
    parser.add_argument("--crops", type=int, default=0,
                        help="pre-train on this many random crops of each training photograph's "
                             "stamp (written to OUT/crops_K), not on the photographs")
    parser.add_argument("--stamps", type=Path, default=None,
                        help="an unpacked Tux Paint stamps folder for the demo data and the "
                             "crops (default: Tux Paint's installed stamps or the Debian package)")
    args, extra = parser.parse_known_args(argv)  # Hydra overrides for every method's run
    if args.crops < 0:
        parser.error(f"--crops {args.crops}: give a number of crops per photograph, or 0 for the "
                     "photographs themselves")
    started = time.time()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    images = build_demo_dataset(args.data, args.stamps).resolve()
    split = out / "split"
    train, val = ((split / "train", split / "val") if (split / "train").is_dir()
                  else hold_out(images, split, HOLDOUT_EVERY))
    view_config = compose_config([DEMO_CONFIG])[1]
    epochs = args.epochs or int(view_config.OPTIMIZER.num_epochs)
    negatives = args.negatives or int(view_config.LOSS.pirl_loss.num_negatives)
    pretrain_data = (build_crop_set(train, out / f"crops_{args.crops}", args.crops, args.stamps,
                                    cache=args.data / "cache") if args.crops else train)
    num_images = folder_image_count(str(pretrain_data))  # counted, not decoded
    extra = [*rank_overrides(args.ranks, int(view_config.DATA.TRAIN.BATCHSIZE_PER_REPLICA)),
             *extra]
    runs: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for method in args.methods:
        overrides = method_run(method, out, num_images, epochs, negatives)
        for seed in args.seeds:
            began = time.time()
            run_dir = out / "runs" / f"{method}-seed{seed}"
            checkpoint, config = None, view_config
            if overrides is not None:
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                checkpoint = pretrain([*overrides, *extra], pretrain_data, run_dir, seed)
                config = run_config(config_beside(checkpoint))
            result = evaluate(method, config, checkpoint, view_config, images, train, val, seed,
                              args.transforms)
            if checkpoint is not None:
                result["final_loss"] = final_loss(run_dir)
            result["seconds"] = round(time.time() - began, 1)
            runs.setdefault(method, {})[str(seed)] = result
            print(f"{method} seed {seed}: {json.dumps(metric_values(result))}", flush=True)
    summary = summarize(runs)
    figure = plot_by_stage(summary, out / "fig5_probes_by_stage.png", args.seeds)
    results = {"seeds": args.seeds, "epochs": epochs, "negatives": negatives,
               "ranks": args.ranks, "crops": args.crops, "num_images": num_images,
               "extra_overrides": extra, "transforms": args.transforms,
               "runs": runs, "summary": summary, "seconds": round(time.time() - started, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(markdown_table(summary))
    print(f"Results: {out / 'results.json'}\nFigure: {figure}")
    return results


if __name__ == "__main__":
    main()
