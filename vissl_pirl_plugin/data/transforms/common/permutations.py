"""Sets of jigsaw patch permutations ``T`` (paper §4.2, Fig. 7).

PIRL's default uses all ``9! = 362880`` orders (a fresh ``randperm`` per image).
For the study of ``|T|`` the transform draws from a fixed set, generated
deterministically from a seed, with no file to download:

* ``maxhamming`` (default, as in Noroozi & Favaro's jigsaw, whose setup Fig. 7
  follows): greedy selection. Start from a random permutation, then repeatedly
  add the candidate whose minimum Hamming distance to the chosen set is
  largest (ties broken at random). Candidates are all ``n!`` permutations, so
  the cost grows as ``|T| * n!``; sets above ``MAX_HAMMING_LIMIT`` are refused.
* ``uniform``: ``|T|`` distinct permutations drawn uniformly without replacement.
"""
import math
from functools import lru_cache

import numpy as np
import torch

SELECTIONS = ("maxhamming", "uniform")
MAX_HAMMING_LIMIT = 2000


def all_permutations(n: int) -> np.ndarray:
    """All ``n!`` permutations of ``range(n)`` in lexicographic order, ``(n!, n)`` uint8."""
    perms = np.zeros((1, 0), dtype=np.uint8)
    for size in range(1, n + 1):
        # insert the new largest element `size - 1` at every position of each permutation
        grown = [np.insert(perms, position, size - 1, axis=1) for position in range(size)]
        perms = np.concatenate(grown)
    order = np.lexsort(perms.T[::-1])
    return perms[order]


@lru_cache(maxsize=8)
def permutation_set(num_permutations: int, num_items: int = 9, seed: int = 0,
                    selection: str = "maxhamming") -> torch.Tensor:
    """A fixed set of ``num_permutations`` distinct permutations, ``(|T|, num_items)`` int64."""
    total = math.factorial(num_items)
    if not 1 <= num_permutations <= total:
        raise ValueError(f"num_permutations={num_permutations} must be in [1, {num_items}! = "
                         f"{total}].")
    if selection not in SELECTIONS:
        raise ValueError(f"permutation_selection={selection!r}: use one of {SELECTIONS}.")
    rng = np.random.default_rng(seed)
    candidates = all_permutations(num_items)
    if num_permutations == total:
        chosen = np.arange(total)
    elif selection == "uniform":
        chosen = rng.choice(total, size=num_permutations, replace=False)
    else:
        chosen = _max_hamming(candidates, num_permutations, rng)
    return torch.from_numpy(candidates[chosen].astype(np.int64))


def _max_hamming(candidates: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if count > MAX_HAMMING_LIMIT:
        raise ValueError(
            f"num_permutations={count} is too many for maxhamming selection (at most "
            f"{MAX_HAMMING_LIMIT}): use permutation_selection=uniform.")
    chosen = [int(rng.integers(len(candidates)))]
    min_distance = np.full(len(candidates), candidates.shape[1] + 1, dtype=np.int16)
    for _ in range(count - 1):
        distance = (candidates != candidates[chosen[-1]]).sum(axis=1, dtype=np.int16)
        np.minimum(min_distance, distance, out=min_distance)
        best = np.flatnonzero(min_distance == min_distance.max())
        chosen.append(int(rng.choice(best)))
    return np.array(chosen)
