"""KV-cache reduction: a window with attention sinks (StreamingLLM) and heavy-hitter budgets (H2O).

Both keep at most a fixed number of tokens' K/V per sequence and layer, so they are modelled
as a window on every layer (``min`` with any window the model already has): the KV bytes a
sequence holds (and so the batch that fits) and the keys each query reads are capped.

* StreamingLLM (Xiao et al. 2024, "Efficient Streaming Language Models with Attention
  Sinks"): ``window`` recent tokens plus ``sinks`` initial tokens (the paper keeps 4).
* H2O (Zhang et al. 2023, "H2O: Heavy-Hitter Oracle"): a ``budget`` of heavy hitters plus
  recent tokens. Choosing the heavy hitters needs each cached token's accumulated attention:
  one fp32 read-add-write per attention score of every decode step (``attention.h2o_scores``).
  The prompt is attended in full by H2O before eviction; the window model caps prefill
  attention too, so prefill of prompts longer than the budget is under-counted.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..operators import OpKind
from .base import AccuracyCost, Transform, TransformError, append_row
from .registry import register


def capped_windows(model, cap: int):
    """``model`` with every layer's attention window at most ``cap`` tokens (idempotent)."""
    current = model.layer_windows or (None,) * model.num_layers
    windows = tuple(cap if w is None else min(w, cap) for w in current)
    if windows == model.layer_windows:
        return model
    return dataclasses.replace(model, layer_windows=windows)


def window_kv_tokens(context, window: int, sinks: int = 0):
    """Tokens of K/V one sequence holds per layer under a window with sinks: ``min(L, w + s)``."""
    return np.minimum(np.asarray(context, dtype=np.float64), float(window + sinks))


_UNKNOWN = AccuracyCost("accuracy", math.nan, "-", "no published figure bundled; give accuracy_delta=")


@register
@dataclass(frozen=True)
class StreamingWindow(Transform):
    """StreamingLLM's recent window plus attention sinks (module docstring)."""

    key = "streaming"
    primary = "window"
    summary = "KV window of recent tokens + attention sinks (StreamingLLM)"
    window: int = 0  # 0: off
    sinks: int = 4

    @classmethod
    def identity(cls) -> StreamingWindow:
        return cls(window=0)

    @classmethod
    def example(cls) -> StreamingWindow:
        return cls(window=1020, sinks=4)

    def validate(self) -> None:
        if self.window < 0:
            raise TransformError("window", f"must be >= 0 tokens (0 = off), got {self.window}")
        if self.sinks < 0:
            raise TransformError("sinks", f"must be >= 0, got {self.sinks}")

    def adjust_model(self, model):
        return model if self.window == 0 else capped_windows(model, self.window + self.sinks)

    def accuracy(self) -> AccuracyCost:
        return self.user_accuracy(AccuracyCost("none", 0.0, "any", "off") if self.window == 0 else _UNKNOWN)


@register
@dataclass(frozen=True)
class HeavyHitters(Transform):
    """H2O heavy-hitter + recent-token KV budget (module docstring)."""

    key = "h2o"
    primary = "budget"
    summary = "KV budget of heavy-hitter + recent tokens (H2O)"
    budget: int = 0  # tokens per sequence and layer; 0: off

    @classmethod
    def identity(cls) -> HeavyHitters:
        return cls(budget=0)

    @classmethod
    def example(cls) -> HeavyHitters:
        return cls(budget=512)

    def validate(self) -> None:
        if self.budget < 0:
            raise TransformError("budget", f"must be >= 0 tokens (0 = off), got {self.budget}")

    def adjust_model(self, model):
        return model if self.budget == 0 else capped_windows(model, self.budget)

    def adjust_graph(self, table, ctx):
        if self.budget == 0:
            return table
        rows = np.array([n.startswith("attention.decode") and k == OpKind.ATTENTION
                         for n, k in zip(table.names, table.kind)])
        if not rows.any():
            return table
        scores = (table.scores[rows] * table.count[rows][:, None]).sum(axis=0)
        # one fp32 accumulator per cached token and head: read + write per score (scores are
        # per query head; the accumulators are too, as H2O keeps them per head)
        return append_row(table, "attention.h2o_scores", OpKind.ELEMENTWISE, "fp32",
                            flops=scores, act_bytes=8.0 * scores)

    def accuracy(self) -> AccuracyCost:
        return self.user_accuracy(AccuracyCost("none", 0.0, "any", "off") if self.budget == 0 else _UNKNOWN)
