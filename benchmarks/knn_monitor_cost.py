"""The kNN monitor's search at ImageNet scale, extrapolated from a measured chunk (docs/training.md).

    .venv/bin/python benchmarks/knn_monitor_cost.py [--queries 1000] [--rows 262144] [--repeats 3]

Times ``bank_top_k`` (cosine similarity + top-K, K = 200, 128-d, fp32, in the monitor's
chunks of bank rows) for ``--queries`` unit vectors against ``--rows`` bank rows on this
machine's CPU, the median of ``--repeats`` runs after one warm-up, and scales it by
the number of (query, row) pairs to 50,000 validation images against ImageNet's
1,281,167 bank rows (the work is one matrix product and one top-K per chunk, linear
in both counts). The embedding pass of the validation images is not included.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from vissl_pirl_plugin.losses.knn_classifier import bank_top_k

VAL_IMAGES, BANK_ROWS, DIM, K = 50_000, 1_281_167, 128, 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=262144)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    queries = F.normalize(torch.randn(args.queries, DIM, generator=generator), dim=1)
    rows = F.normalize(torch.randn(args.rows, DIM, generator=generator), dim=1)
    bank_top_k(queries, rows, K)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        bank_top_k(queries, rows, K)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    pairs_per_second = args.queries * args.rows / seconds
    imagenet = VAL_IMAGES * BANK_ROWS / pairs_per_second
    print(json.dumps({"threads": torch.get_num_threads(), "queries": args.queries,
                      "rows": args.rows, "seconds": round(seconds, 3),
                      "pairs_per_second": f"{pairs_per_second:.3g}",
                      "imagenet_seconds_one_process": round(imagenet, 1)}))


if __name__ == "__main__":
    main()
