"""Puts several ``make compare`` results side by side and tests each column's mean against the
first column's.

    .venv/bin/python benchmarks/compare_columns.py [--method pirl] LABEL=DIR[+DIR ...] ...

Each ``DIR`` is a ``make compare --out`` folder; a column joined with ``+`` pools the seeds of its
folders (e.g. 2 and 4 ranks with the same settings). Prints two markdown tables:

1. mean [min, max] over the seeds of every measurement (``compare_methods.markdown_table``), a
   column per ``LABEL``;
2. for every column after the first, the difference of its mean from the first column's and
   the two-sided permutation p-value of that difference: the share of all the ways of
   splitting the two columns' seeds into groups of their sizes whose means differ at least as
   much (every split up to ``EXACT_LIMIT`` splits, else ``SAMPLED_SPLITS`` random ones, seeded,
   and the observed split). The header gives the smallest p-value the seeds allow (with 3
   seeds against 3 it is 0.10). With a handful of seeds a column can lie outside another's
   range by chance; the p-value says how often the seeds' draws alone would part them as far.
"""
import argparse
import itertools
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_methods import (  # noqa: E402
    MISSING,
    TABLE_ROWS,
    markdown_table,
    metric_values,
    value_ranges,
)

EXACT_LIMIT = 200_000
SAMPLED_SPLITS = 100_000


def column_runs(folders: Sequence[Path], method: str) -> List[Dict[str, float]]:
    """The measurements of every run of ``method``, pooled over ``folders``' ``results.json``."""
    runs = []
    for folder in folders:
        path = folder / "results.json"
        if not path.is_file():
            raise ValueError(f"{path} does not exist: give a `make compare --out` folder whose "
                             "run has finished.")
        try:
            by_method = json.loads(path.read_text())["runs"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a `make compare` results.json ({error!r}): give the "
                             "--out folder of a finished run.") from error
        if not by_method.get(method):
            raise ValueError(f"{path} has no runs of method {method!r} (it has "
                             f"{sorted(by_method)}): choose one with --method.")
        runs += [metric_values(run) for run in by_method[method].values()]
    return runs


def permutation_p(first: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided permutation p-value of ``mean(other) - mean(first)``."""
    pooled, size = [*first, *other], len(other)
    total = sum(pooled)
    observed = abs(statistics.fmean(other) - statistics.fmean(first))

    def gap(chosen_sum: float) -> float:
        return abs(chosen_sum / size - (total - chosen_sum) / (len(pooled) - size))

    # sums in another order round otherwise
    threshold = observed - 1e-9 * max(1.0, *map(abs, pooled))
    splits = math.comb(len(pooled), size)
    exact = splits <= EXACT_LIMIT  # every split, the observed one included
    if exact:
        chosen_sets: Iterable[Sequence[float]] = itertools.combinations(pooled, size)
    else:  # sampled splits, and the observed one counted once
        generator, splits = random.Random(0), SAMPLED_SPLITS
        chosen_sets = (generator.sample(pooled, size) for _ in range(splits))
    hits = sum(gap(sum(chosen)) >= threshold for chosen in chosen_sets)
    return hits / splits if exact else (hits + 1) / (splits + 1)


def smallest_p(first: int, other: int) -> float:
    """The smallest exact p-value of ``first`` seeds against ``other`` (distinct values): the
    observed split alone, or with its mirror when the groups have one size."""
    return (2 if first == other else 1) / math.comb(first + other, other)


def parse_column(spec: str) -> Tuple[str, List[Path]]:
    label, separator, folders = spec.partition("=")
    parts = folders.split("+")
    if not separator or not label or not all(parts):
        raise ValueError(f"{spec!r}: write a column as LABEL=DIR or LABEL=DIR+DIR.")
    return label, [Path(part) for part in parts]


def difference_cell(first: List[float], other: List[float]) -> str:
    p = permutation_p(first, other)
    shown = f"{p:.2f}" if p >= 0.01 else f"{p:.2g}"  # below 0.01: two significant digits
    return f"{statistics.fmean(other) - statistics.fmean(first):+.3f} (p = {shown})"


def tables(columns: Dict[str, List[Dict[str, float]]]) -> str:
    """The range table and the difference table (see the module's docstring)."""
    labels = list(columns)
    measured = {label: value_ranges(runs) for label, runs in columns.items()}
    ranges = markdown_table({f"{label} ({len(columns[label])} seeds)": by_key
                             for label, by_key in measured.items()})

    def values(label: str, key: str) -> Optional[List[float]]:
        """The column's values of ``key``; None where not every run measured it."""
        return [run[key] for run in columns[label]] if key in measured[label] else None

    first = labels[0]
    lines = ["", f"| difference from {first} (permutation p) | " + " | ".join(
        f"{label} (smallest p {smallest_p(len(columns[first]), len(columns[label])):.2g})"
        for label in labels[1:]) + " |", "|---|" + "---|" * (len(labels) - 1)]
    for key, name in TABLE_ROWS:
        reference = values(first, key)
        cells = [difference_cell(reference, other)
                 if reference is not None and other is not None else MISSING
                 for other in (values(label, key) for label in labels[1:])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([ranges, *lines])


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("columns", nargs="+", metavar="LABEL=DIR[+DIR ...]",
                        help="a column: its label and make compare --out folder(s)")
    parser.add_argument("--method", default="pirl", help="the method compared (default: pirl)")
    args = parser.parse_args(argv)
    if len(args.columns) < 2:
        parser.error("give at least two columns: the first is the reference of the others")
    columns: Dict[str, List[Dict[str, float]]] = {}
    try:
        for spec in args.columns:
            label, folders = parse_column(spec)
            if label in columns:
                raise ValueError(f"the label {label!r} names two columns: give each its own.")
            columns[label] = column_runs(folders, args.method)
    except ValueError as error:
        parser.error(str(error))
    text = tables(columns)
    print(text)
    return text


if __name__ == "__main__":
    main()
