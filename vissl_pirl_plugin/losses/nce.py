"""Pure tensor maths of the PIRL objective (paper §2.1-2.2, Eq. 3-4).

Nothing here knows about VISSL: these functions turn cosine similarities between
queries and memory-bank entries into the per-sample losses of the paper and are
unit-tested against a direct transcription of the equations.

Notation (paper §2.1): ``s(a, b)`` is the cosine similarity, ``tau`` the
temperature, ``|D|`` the dataset size and ``N`` the number of negatives.
"""
import math

import torch
import torch.nn.functional as F


def nce_logits(scores: torch.Tensor, temperature: float, log_norm_constant: torch.Tensor,
               num_negatives: int, dataset_size: int) -> torch.Tensor:
    """Logits of the binary NCE classifier with a uniform noise prior (paper Eq. 3).

    With ``P(a, b) = exp(s(a, b) / tau) / Z`` and noise probability ``1 / |D|``,
    ``h(a, b) = P / (P + N / |D|) = sigmoid(s / tau - log Z - log(N / |D|))``.
    Returning the argument of the sigmoid lets the loss use ``logsigmoid``,
    which is stable where ``exp(s / tau)`` would overflow.
    """
    log_noise = math.log(num_negatives / dataset_size)
    return scores / temperature - log_norm_constant - log_noise


def nce_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor, temperature: float,
             log_norm_constant: torch.Tensor, dataset_size: int) -> torch.Tensor:
    """Per-sample ``L_NCE(m_I, v)`` of paper Eq. 4.

    ``L_NCE = -log h(m_I, v) - sum_{I' in D_N} log(1 - h(v, m_I'))``.

    Args:
        positive_scores: ``(...,)`` cosine similarity of each query with its own
            memory entry ``m_I``.
        negative_scores: ``(..., N)`` cosine similarity with the negatives ``m_I'``.
        log_norm_constant: ``log Z`` (a scalar tensor).
        dataset_size: ``|D|``, the number of memory-bank entries.

    Returns:
        The loss of each query, shape ``(...,)``.
    """
    num_negatives = negative_scores.shape[-1]
    pos = nce_logits(positive_scores, temperature, log_norm_constant, num_negatives, dataset_size)
    neg = nce_logits(negative_scores, temperature, log_norm_constant, num_negatives, dataset_size)
    return -F.logsigmoid(pos) - F.logsigmoid(-neg).sum(dim=-1)


def infonce_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor,
                 temperature: float) -> torch.Tensor:
    """Per-sample InfoNCE: softmax cross-entropy over the ``1 + N`` scores.

    This is the softmax reading of Eq. 3 that several write-ups of the paper
    print (``h = exp(s_pos/tau) / (exp(s_pos/tau) + sum exp(s_neg/tau))``);
    the loss is ``-log h``.
    """
    logits = torch.cat([positive_scores.unsqueeze(-1), negative_scores], dim=-1) / temperature
    return torch.logsumexp(logits, dim=-1) - logits[..., 0]
