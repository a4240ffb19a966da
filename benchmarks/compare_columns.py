"""Several ``make compare`` results side by side, a column each, and how far each column's mean
lies from the first column's, with an exact permutation test over the seeds.

    .venv/bin/python benchmarks/compare_columns.py [--method pirl] LABEL=DIR[+DIR ...] ...

Each ``DIR`` is a ``make compare --out`` folder; a column joined with ``+`` pools the seeds of its
folders (e.g. 2 and 4 ranks with the same settings). Prints two markdown tables:

1. mean [min, max] over the seeds of every measurement (``compare_methods.TABLE_ROWS``), a
   column per ``LABEL``;
2. for every column after the first, the difference of its mean from the first column's and
   the two-sided permutation p-value of that difference: the share of all the ways of
   splitting the two columns' seeds into groups of their sizes whose means differ at least as
   much (exact up to ``EXACT_LIMIT`` splits, else ``SAMPLED_SPLITS`` random ones, seeded,
   and the observed split). With
   a handful of seeds a column can lie outside another's range by chance; the p-value says how
   often the seeds' draws alone would part them that far.
"""
import argparse
import itertools
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import TABLE_ROWS, metric_values  # noqa: E402

EXACT_LIMIT = 200_000
SAMPLED_SPLITS = 100_000


def column_values(folders: Sequence[Path], method: str) -> Dict[str, List[float]]:
    """Every measurement's value per seed, pooled over ``folders``' ``results.json``."""
    values: Dict[str, List[float]] = {}
    for folder in folders:
        path = folder / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: give a `make compare --out` folder "
                                    "whose run has finished.")
        runs = json.loads(path.read_text())["runs"]
        if method not in runs:
            raise ValueError(f"{path} has no runs of method {method!r} (it has {sorted(runs)}): "
                           "choose one with --method.")
        for run in runs[method].values():
            for key, value in metric_values(run).items():
                values.setdefault(key, []).append(value)
    return values


def permutation_p(first: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided permutation p-value of ``mean(other) - mean(first)``."""
    pooled, size = [*first, *other], len(other)
    total = sum(pooled)
    observed = abs(statistics.fmean(other) - statistics.fmean(first))

    def gap(chosen_sum: float) -> float:
        return abs(chosen_sum / size - (total - chosen_sum) / (len(pooled) - size))

    tolerance = 1e-12 * max(1.0, observed)
    if math.comb(len(pooled), size) <= EXACT_LIMIT:  # every split, the observed one included
        gaps = [gap(sum(chosen)) for chosen in itertools.combinations(pooled, size)]
        return sum(g >= observed - tolerance for g in gaps) / len(gaps)
    generator = random.Random(0)  # sampled splits, and the observed one counted once
    gaps = [gap(sum(generator.sample(pooled, size))) for _ in range(SAMPLED_SPLITS)]
    return (sum(g >= observed - tolerance for g in gaps) + 1) / (SAMPLED_SPLITS + 1)


def parse_column(spec: str) -> Tuple[str, List[Path]]:
    label, separator, folders = spec.partition("=")
    if not separator or not label or not folders:
        raise ValueError(f"{spec!r}: write a column as LABEL=DIR or LABEL=DIR+DIR.")
    return label, [Path(folder) for folder in folders.split("+")]


def cell(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{min(values):.3f}, {max(values):.3f}]"


def tables(columns: Dict[str, Dict[str, List[float]]]) -> str:
    """The range table and the difference table (see the module's docstring)."""
    labels = list(columns)
    rows = [(key, label) for key, label in TABLE_ROWS
            if all(key in values for values in columns.values())]
    seeds = {label: len(next(iter(values.values()))) for label, values in columns.items()}
    lines = ["| measurement | " + " | ".join(f"{label} ({seeds[label]} seeds)"
                                             for label in labels) + " |",
             "|---|" + "---|" * len(labels)]
    lines += [f"| {name} | " + " | ".join(cell(columns[label][key]) for label in labels) + " |"
              for key, name in rows]
    first = labels[0]
    lines += ["", f"| difference from {first} (permutation p) | "
              + " | ".join(labels[1:]) + " |", "|---|" + "---|" * (len(labels) - 1)]
    for key, name in rows:
        reference = columns[first][key]
        lines.append(f"| {name} | " + " | ".join(
            f"{statistics.fmean(columns[label][key]) - statistics.fmean(reference):+.3f} "
            f"(p = {permutation_p(reference, columns[label][key]):.2f})"
            for label in labels[1:]) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("columns", nargs="+", metavar="LABEL=DIR[+DIR ...]",
                        help="a column: its label and make compare --out folder(s)")
    parser.add_argument("--method", default="pirl", help="the method compared (default: pirl)")
    args = parser.parse_args(argv)
    if len(args.columns) < 2:
        parser.error("give at least two columns: the first is the reference of the others")
    columns = {}
    try:
        for spec in args.columns:
            label, folders = parse_column(spec)
            if label in columns:
                raise ValueError(f"the label {label!r} names two columns: give each its own.")
            columns[label] = column_values(folders, args.method)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    text = tables(columns)
    print(text)
    return text


if __name__ == "__main__":
    main()
