"""The PIRL loss, registered in VISSL as ``pirl_loss`` (paper §2, Eq. 4 and §2.2).

``L(I, I^t) = lambda * L_NCE(m_I, g(v_It)) + (1 - lambda) * L_NCE(m_I, f(v_I))``

with negatives ``m_I'`` read from the memory bank. ``lambda = 0`` is NPID /
NPID++ (§3, "Baselines"); ``lambda = 1`` drops the ``f`` term.

Defaults follow the paper and the authors' released code (VISSL's
``nce_loss_with_memory``) so that results compare with VISSL's model zoo, except where listed:

* ``loss_type: nce`` is binary NCE with the uniform noise prior ``1/|D|`` of NPID,
  ``P = exp(s/tau) / Z`` with ``Z = mean(exp(s/tau)) * |D|`` estimated once, on
  the first batch, from the scores of the first loss term (``g`` when
  ``lambda > 0``), averaged over ranks. ``Z`` is a buffer and is checkpointed.
  ``infonce`` is softmax cross-entropy over the ``1 + N`` scores.
* Deviations from ``nce_loss_with_memory``, all deliberate:

  - negatives are drawn from ``D \\ {I}`` as the paper's Eq. 4 says; VISSL's
    sampler can draw the positive itself as a negative;
  - both loss terms of a sample use the same ``N`` negatives (the paper writes one
    ``D_N``); VISSL draws a new set per term;
  - the memory bank is updated by ``MemoryBankUpdateHook`` after the optimizer
    step, not inside the loss's forward;
  - the bank starts with the same unit rows on every rank. VISSL seeds each rank's bank
    differently and averages them on the first forward without renormalising, so with W ranks
    its not-yet-updated rows have norm about 1/sqrt(W) and the Z estimated on the first batch
    is smaller (Z/|D| 1.506 against 2.326 at 2 ranks; 1.025 against 2.204 simulated at 32):
    every NCE logit of the run is shifted by log of their ratio (-0.77 at 32 ranks).
    ``memory_bank.init: vissl_rank_mean`` starts the bank as VISSL's does (the default, ``unit``,
    learned as well or better at 2 ranks: docs/comparison.md);
  - NCE is computed in log space, without VISSL's float32 epsilon in its denominators; so the
    reported loss is lower than VISSL's by about ``eps * |D|`` per unit of loss weight (0.153
    at ImageNet size, 2e-5 on the demo's 169 images), with the same gradients.

* ``negative_sampling: shared`` (an option, not the paper's setting) draws one set
  of ``N`` negatives per batch, excluding all positives of the batch.

The loss is called as ``loss([g_patches, f_images], sample_indices)`` in the order
of ``MULTI_INPUT_HEAD_MAPPING``, or ``loss(f_images, sample_indices)`` when
``lambda_weight`` is 0. Samples whose index equals ``ignore_index`` (images that
failed to load, see ``pirl_collator``) are dropped. On a two-input model, the head whose
term has weight 0 (``g`` for ``lambda = 0``, ``f`` for ``lambda = 1``) gets an all-zero
gradient, so that DistributedDataParallel finds every parameter used.
"""
import logging
import math
import pprint
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from classy_vision.generic.distributed_util import all_reduce_sum, get_rank, get_world_size
from classy_vision.losses import ClassyLoss, register_loss

from vissl_pirl_plugin.utils.distributed_checks import NON_FINITE_LOSS
from vissl_pirl_plugin.losses.memory_bank import MemoryBank, first_true
from vissl_pirl_plugin.losses.negative_sampling import (
    sample_per_sample_negatives,
    sample_shared_negatives,
)
from vissl_pirl_plugin.losses.nce import infonce_loss, nce_loss
from vissl_pirl_plugin.losses.sharded_scores import ShardedNegativeScores

LOSS_TYPES = ("nce", "infonce")
NEGATIVE_SAMPLING = ("per_sample", "shared")
ModelOutput = Union[torch.Tensor, List[torch.Tensor]]


@register_loss("pirl_loss")
class PIRLLoss(ClassyLoss):
    """PIRL loss with a memory bank of negatives. See the module docstring.

    Args:
        lambda_weight: ``lambda`` of Eq. 4 (paper: 0.5).
        temperature: ``tau`` (paper: 0.07).
        num_negatives: ``N`` (paper: 32000).
        num_train_samples: ``|D|``; VISSL's trainer fills it with the dataset length.
        loss_type: ``nce`` (paper) or ``infonce``.
        negative_sampling: ``per_sample`` (paper) or ``shared``.
        norm_constant: ``Z``; a value <= 0 estimates it from the first batch.
        embedding_dim, momentum, init_seed, bank_dtype, bank_init: the memory bank's, see
            ``MemoryBank`` (config keys ``memory_bank.{embedding_dim, momentum, init_seed, dtype,
            init}``). ``bank_init`` ``vissl_rank_mean`` starts it as VISSL 0.1.6 does with
            several ranks, which also sets the Z estimated on the first batch as VISSL's.
        sharded_bank: split the bank over the ranks (``memory_bank.sharded``).
        ignore_index: index label of samples to leave out of the loss and the bank.
    """

    def __init__(self, lambda_weight: float = 0.5, temperature: float = 0.07,
                 num_negatives: int = 32000, num_train_samples: int = -1,
                 loss_type: str = "nce", negative_sampling: str = "per_sample",
                 norm_constant: float = -1.0, embedding_dim: int = 128, momentum: float = 0.5,
                 init_seed: int = 0, ignore_index: int = -1, bank_dtype: str = "float32",
                 sharded_bank: bool = False, bank_init: str = "unit") -> None:
        super().__init__()
        check_loss_params(lambda_weight, temperature, num_negatives, loss_type, negative_sampling,
                          num_train_samples)
        self.lambda_weight = float(lambda_weight)
        self.temperature = float(temperature)
        self.num_negatives = int(num_negatives)
        self.loss_type = loss_type
        self.negative_sampling = negative_sampling
        self.ignore_index = ignore_index
        shards = get_world_size() if sharded_bank else 1
        self.memory_bank = MemoryBank(num_train_samples, embedding_dim, momentum, init_seed,
                                      bank_dtype, num_shards=shards,
                                      shard_index=get_rank() if sharded_bank else 0,
                                      init=bank_init, world_size=get_world_size())
        # log Z; NaN until estimated (only used by loss_type "nce")
        log_z = math.log(norm_constant) if norm_constant > 0 else float("nan")
        self.register_buffer("log_norm_constant", torch.tensor(log_z))
        self.norm_constant_known: Optional[bool] = None  # None: read log Z at the next step
        # VISSL's trainer builds the loss with from_config, which sets this: its bank is then
        # updated by MemoryBankUpdateHook through memory_update_inputs, once per step
        self.requires_bank_hook = False
        self.training_forwards = self.bank_updates = 0

    @classmethod
    def from_config(cls, loss_config) -> "PIRLLoss":
        bank = loss_config.get("memory_bank", {})
        loss = cls(
            lambda_weight=loss_config.get("lambda_weight", 0.5),
            temperature=loss_config.get("temperature", 0.07),
            num_negatives=loss_config.get("num_negatives", 32000),
            num_train_samples=loss_config.get("num_train_samples", -1),
            loss_type=loss_config.get("loss_type", "nce"),
            negative_sampling=loss_config.get("negative_sampling", "per_sample"),
            norm_constant=loss_config.get("norm_constant", -1.0),
            embedding_dim=bank.get("embedding_dim", 128),
            momentum=bank.get("momentum", 0.5),
            init_seed=bank.get("init_seed", 0),
            ignore_index=loss_config.get("ignore_index", -1),
            bank_dtype=bank.get("dtype", "float32"),
            sharded_bank=bank.get("sharded", False),
            bank_init=bank.get("init", "unit"),
        )
        loss.requires_bank_hook = True
        return loss

    @property
    def norm_constant(self) -> float:
        """``Z`` (NaN until estimated)."""
        return math.exp(float(self.log_norm_constant))

    def split_output(self, output: ModelOutput) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """Returns ``(g(v_It), f(v_I))``; ``g`` is None for a single-output (NPID) model."""
        if isinstance(output, torch.Tensor):
            output = [output]
        if len(output) == 1:
            if self.lambda_weight > 0:
                raise ValueError(
                    "pirl_loss got one model output but lambda_weight="
                    f"{self.lambda_weight} needs two: [g(transformed), f(image)]. Feed both inputs "
                    "(MODEL.MULTI_INPUT_HEAD_MAPPING) or set LOSS.pirl_loss.lambda_weight=0 (NPID).")
            return None, output[0]
        if len(output) != 2:
            raise ValueError(
                f"pirl_loss expects [g(transformed), f(image)] from the model, got {len(output)} "
                "outputs. Check MODEL.MULTI_INPUT_HEAD_MAPPING.")
        return output[0], output[1]

    def memory_update_inputs(self, output: ModelOutput, target: torch.Tensor
                             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised, detached ``f(v_I)`` and the sample indices, ignored samples kept.

        The hook gathers these from all ranks and drops ``ignore_index`` entries.
        """
        _, f = self.split_output(output)
        self.bank_updates += 1
        return F.normalize(f.detach().float(), dim=1), target.view(-1)

    def check_bank_hook_runs(self) -> None:
        """Stops a VISSL-built loss at its second training step if ``MemoryBankUpdateHook``
        never ran: the run was launched without the plugin's hooks (e.g. by VISSL's own
        ``tools/run_distributed_engines.py``) and its bank would stay frozen at its random
        initialisation. Every rank counts the same steps, so all stop together."""
        self.training_forwards += 1
        if self.requires_bank_hook and self.training_forwards > 1 and self.bank_updates == 0:
            raise RuntimeError(
                "pirl_loss: the memory bank was not updated after the first training step: "
                "MemoryBankUpdateHook is not running, and the bank would stay frozen at its "
                "random initialisation. The run was launched without the plugin's hooks, e.g. "
                "with VISSL's own tools/run_distributed_engines.py. Launch it with vissl-pirl's "
                "launcher: `python tools/run_distributed_engines.py` of the vissl-pirl "
                "repository, `vissl-pirl-train` or `python -m vissl_pirl_plugin.tools.train`, "
                "same arguments (a launcher of your own must pass "
                "hook_generator=vissl_pirl_plugin.hooks.hook_generator.pirl_hook_generator).")

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.check_bank_hook_runs()
        g, f = self.split_output(output)
        indices = target.view(-1)
        terms = []  # (weight, query) of the terms with a non-zero weight, g first
        if self.lambda_weight > 0:
            terms.append((self.lambda_weight, g))
        if self.lambda_weight < 1:
            terms.append((1.0 - self.lambda_weight, f))
        for _, query in terms:
            self.memory_bank.check_embeddings(query)
            if query.shape[0] != indices.shape[0]:
                raise ValueError(
                    f"pirl_loss got {query.shape[0]} embeddings for {indices.shape[0]} sample "
                    "indices. The transformed branch must yield one vector per image.")
        # masks, not boolean indexing, so that the step makes no host sync: a sample left out
        # (failed image, or an index outside the bank) borrows a valid index and weighs 0
        valid = self.memory_bank.check_indices(indices, keep=indices != self.ignore_index)
        if indices.numel() > 0:
            first_valid = first_true(valid)
            indices = torch.where(valid, indices, torch.where(valid.index_select(0, first_valid),
                                                              indices.index_select(0, first_valid), 0))
        # scores and NCE in fp32 whatever autocast is active (fp16 logits would be 0.0078 apart)
        with torch.autocast(indices.device.type, enabled=False):
            queries = torch.stack([F.normalize(q.float(), dim=1) for _, q in terms], dim=1)
            positive_scores, negative_scores = self._scores(queries, indices)
            if self.loss_type == "nce":
                self._maybe_estimate_norm_constant(positive_scores[:, 0], negative_scores[:, 0],
                                                   valid)
                per_term = nce_loss(positive_scores, negative_scores, self.temperature,
                                    self.log_norm_constant, self.memory_bank.num_entries)
            else:
                per_term = infonce_loss(positive_scores, negative_scores, self.temperature)
            per_term = torch.where(valid.unsqueeze(1), per_term, 0.0)
            mean = per_term.sum(dim=0) / valid.sum().clamp(min=1)
            loss = sum(weight * mean[t] for t, (weight, _) in enumerate(terms))
        self.memory_bank.failures.record(NON_FINITE_LOSS, ~torch.isfinite(loss), loss)
        # 0, but it reaches every head: DistributedDataParallel (VISSL never sets
        # find_unused_parameters) stops at the second step if a head gets no gradient, which
        # would happen to g when lambda = 0 and to f when lambda = 1 on a two-input model
        return loss + sum(output.sum() * 0.0 for output in (g, f) if output is not None)

    def _scores(self, queries: torch.Tensor, indices: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Cosine similarities ``(B, T)`` with ``m_I`` and ``(B, T, N)`` with the negatives.

        Positives and negatives are read from the bank in one lookup (one
        collective exchange when the bank is sharded). A sharded bank with per-sample
        negatives looks up the positives only and sends the queries to the negatives' owners
        (``ShardedNegativeScores``), which return the scores.
        """
        bank = self.memory_bank
        if self.negative_sampling == "shared":
            negative_indices = sample_shared_negatives(indices, bank.num_entries,
                                                       self.num_negatives)
        else:
            negative_indices = sample_per_sample_negatives(indices, bank.num_entries,
                                                           self.num_negatives)
        # a sharded bank with per-sample negatives sends the queries to the rows, not the rows
        per_sample_shards = bank.sharded and self.negative_sampling == "per_sample"
        rows = bank.lookup(indices if per_sample_shards
                           else torch.cat([indices, negative_indices.reshape(-1)]))
        positives, negatives = rows[:indices.numel()], rows[indices.numel():]
        positive_scores = (queries * positives.unsqueeze(1)).sum(dim=-1)
        if per_sample_shards:
            negative_scores = ShardedNegativeScores.apply(queries, negative_indices, bank)
        elif self.negative_sampling == "shared":
            negative_scores = queries @ negatives.t()
        else:
            negatives = negatives.view(indices.numel(), self.num_negatives, bank.embedding_dim)
            negative_scores = torch.bmm(queries, negatives.transpose(1, 2))
        return positive_scores, negative_scores

    @torch.no_grad()
    def _maybe_estimate_norm_constant(self, positive_scores: torch.Tensor,
                                      negative_scores: torch.Tensor, valid: torch.Tensor) -> None:
        """NPID's ``Z = mean(exp(s / tau)) * |D|`` over the first batch of all ranks.

        Every rank takes part in the reduction, also with an empty batch, so
        that no rank waits for another. Whether ``Z`` is known is read from the device once
        (and again after loading a checkpoint), not every step.
        """
        if self.norm_constant_known is None:
            self.norm_constant_known = not bool(torch.isnan(self.log_norm_constant))
        if self.norm_constant_known:
            return
        scores = torch.cat([positive_scores.unsqueeze(-1), negative_scores], dim=-1)
        terms = torch.where(valid.unsqueeze(1), (scores.double() / self.temperature).exp(), 0.0)
        stats = torch.stack([terms.sum(), valid.sum().double() * scores.shape[1]])
        stats = all_reduce_sum(stats)
        if stats[1] == 0:
            return
        z = float(stats[0] / stats[1]) * self.memory_bank.num_entries
        self.log_norm_constant.fill_(math.log(z))
        self.norm_constant_known = True
        logging.info(f"pirl_loss: normalisation constant Z estimated as {z:.6g}")

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.norm_constant_known = None  # read log Z again at the next step

    def __repr__(self) -> str:
        return pprint.pformat({
            "name": "pirl_loss", "lambda_weight": self.lambda_weight,
            "temperature": self.temperature, "num_negatives": self.num_negatives,
            "loss_type": self.loss_type, "negative_sampling": self.negative_sampling,
            "memory_bank": tuple(self.memory_bank.embeddings.shape),
            "momentum": self.memory_bank.momentum,
        })


def check_loss_params(lambda_weight: float, temperature: float, num_negatives: int,
                      loss_type: str, negative_sampling: str,
                      num_train_samples: Optional[int]) -> None:
    """Raises ``ValueError`` naming the key and the fix for any bad ``pirl_loss`` setting.

    ``num_train_samples=None`` skips the checks that need the dataset size (the
    launcher validates before the dataset is built).
    """
    if not 0.0 <= lambda_weight <= 1.0:
        raise ValueError(f"LOSS.pirl_loss.lambda_weight={lambda_weight} must be in [0, 1] "
                         "(0.5 in the paper, 0 for NPID).")
    if not temperature > 0:
        raise ValueError(f"LOSS.pirl_loss.temperature={temperature} must be > 0 "
                         "(0.07 in the paper).")
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"LOSS.pirl_loss.loss_type={loss_type!r}: use one of {LOSS_TYPES}.")
    if negative_sampling not in NEGATIVE_SAMPLING:
        raise ValueError(f"LOSS.pirl_loss.negative_sampling={negative_sampling!r}: use one "
                         f"of {NEGATIVE_SAMPLING}.")
    if num_negatives < 1:
        raise ValueError(f"LOSS.pirl_loss.num_negatives={num_negatives} must be >= 1.")
    if num_train_samples is None:
        return
    if num_train_samples < 2:
        raise ValueError(
            f"LOSS.pirl_loss.num_train_samples={num_train_samples}: the memory bank is sized "
            "from the training dataset. VISSL's trainer fills this key with the dataset "
            "length; when building the loss by hand, set it to the number of images.")
    if num_negatives >= num_train_samples:
        raise ValueError(
            f"LOSS.pirl_loss.num_negatives={num_negatives} must be smaller than the training "
            f"dataset, which has {num_train_samples} images. Lower it, e.g. "
            f"LOSS.pirl_loss.num_negatives={max(1, num_train_samples // 2)}.")
