"""Attention pruning (SPRINT, LeOPArd) and linear attention (Linearized-LLM).

* Pruning (``prune=0.3``; SPRINT, Yazdanbakhsh et al. 2022; LeOPArd, Li et al. 2022): a
  runtime threshold keeps a fraction ``keep`` of the attention scores; the kept scores cost
  what they did, a pruned one still pays ``probe`` of its work and K/V bytes to be found
  (SPRINT's approximate in-memory score, LeOPArd's bit-serial early termination). Attention
  rows' FLOPs, scores and KV bytes scale by ``keep + (1 - keep) probe``. ``probe`` defaults
  to 0.5 (a modelling choice: about half the bits / work of a score before it can be
  rejected); set it to your kernel's figure.
* Linear attention (``linear_attention``; Katharopoulos et al. 2020; Linearized-LLM, You
  et al. 2024, "When Linear Attention Meets Autoregressive Decoding"): softmax attention
  is replaced by a recurrent state of ``d_k x d_v`` per head. Each query token costs
  ``4 d_k d_v`` FLOPs per head (update and read the state) whatever the context: the
  attention rows' FLOPs become ``4 query_tokens heads d_k d_v``. The per-sequence state
  (fp32, ``heads d_k d_v 4`` bytes per layer) replaces the growing cache: it is modelled as a
  window of ``state_bytes / kv_bytes_per_token`` tokens, which gives the state's memory and
  the bytes a step reads. MLA models are not supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...dtypes import bytes_per_element
from ..operators import OpKind
from .base import AccuracyCost, Transform, TransformError, copy_table
from .kv import capped_windows
from .registry import register

_UNKNOWN = AccuracyCost("accuracy", math.nan, "-", "no published figure bundled; give accuracy_delta=")


def _attention_rows(table) -> np.ndarray:
    return np.array([k == OpKind.ATTENTION for k in table.kind], dtype=bool)


@register
@dataclass(frozen=True)
class AttentionPruning(Transform):
    """Runtime attention-score pruning with an early-termination cost (module docstring)."""

    key = "prune"
    primary = "keep"
    summary = "attention-score pruning: keep fraction + early-termination cost (SPRINT, LeOPArd)"
    keep: float = 1.0
    probe: float = 0.5

    @classmethod
    def identity(cls) -> AttentionPruning:
        return cls(keep=1.0)

    @classmethod
    def example(cls) -> AttentionPruning:
        return cls(keep=0.3)

    def validate(self) -> None:
        if not 0.0 < self.keep <= 1.0:
            raise TransformError("keep", f"must be in (0, 1], got {self.keep}")
        if not 0.0 <= self.probe <= 1.0:
            raise TransformError("probe", f"must be in [0, 1], got {self.probe}")

    @property
    def work_fraction(self) -> float:
        return self.keep + (1.0 - self.keep) * self.probe

    def adjust_graph(self, table, ctx):
        if self.keep == 1.0:
            return table
        rows = _attention_rows(table)[:, None]
        f = self.work_fraction
        return copy_table(table, flops=np.where(rows, table.flops * f, table.flops),
                          kv_bytes=np.where(rows, table.kv_bytes * f, table.kv_bytes),
                          scores=np.where(rows, table.scores * f, table.scores))

    def accuracy(self) -> AccuracyCost:
        return self.user_accuracy(AccuracyCost("none", 0.0, "any", "off") if self.keep == 1.0 else _UNKNOWN)


@register
@dataclass(frozen=True)
class LinearAttention(Transform):
    """Linear attention with a fixed recurrent state per head (module docstring)."""

    key = "linear_attention"
    primary = "enabled"
    summary = "linear attention: O(n) cost, fixed d_k x d_v state per head"
    enabled: bool = False
    state_bytes: float = 4.0  # fp32 state

    @classmethod
    def identity(cls) -> LinearAttention:
        return cls(enabled=False)

    @classmethod
    def example(cls) -> LinearAttention:
        return cls(enabled=True)

    def validate(self) -> None:
        if self.state_bytes <= 0:
            raise TransformError("state_bytes", f"must be > 0, got {self.state_bytes}")

    def state_tokens(self, model, kv_dtype: str) -> int:
        """Tokens of KV whose bytes equal one layer's state (the window that models the state)."""
        per_token = model.num_kv_heads * (model.head_dim + model.v_head_dim) * bytes_per_element(kv_dtype)
        state = model.num_attention_heads * model.head_dim * model.v_head_dim * self.state_bytes
        return max(1, int(round(state / per_token)))

    def adjust_model(self, model):
        if not self.enabled:
            return model
        if model.attention == "mla":
            raise TransformError(None, f"linear attention is not modelled for MLA models ({model.name})")
        # the state as a window of equivalent tokens (bf16 KV bytes; the graph fixes the FLOPs)
        return capped_windows(model, self.state_tokens(model, "bf16"))

    def adjust_graph(self, table, ctx):
        if not self.enabled:
            return table
        rows = _attention_rows(table)[:, None]
        d = ctx.model
        flops = 4.0 * table.query_tokens * table.heads * d.head_dim * d.v_head_dim
        return copy_table(table, flops=np.where(rows, flops, table.flops),
                          scores=np.where(rows, 0.0, table.scores))

    def accuracy(self) -> AccuracyCost:
        return self.user_accuracy(AccuracyCost("none", 0.0, "any", "off") if not self.enabled else _UNKNOWN)
