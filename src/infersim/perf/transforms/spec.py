"""Speculative decoding: a draft model, an EAGLE-style draft head, or MTP heads.

Leviathan, Kalman & Matias 2023 ("Fast Inference from Transformers via Speculative
Decoding", eq. 1): with per-token acceptance ``alpha`` (i.i.d.) and ``gamma`` drafted tokens,
a verification round emits ``E = (1 - alpha^(gamma + 1)) / (1 - alpha)`` tokens per sequence
on average (the accepted prefix plus the target's own next token). Published systems report
the mean accepted length directly (EAGLE's ``tau``); ``accept=tau`` uses it instead.

One round costs:

* the target's **verify** step over ``batch x V`` tokens, ``V = gamma + 1`` for a chain or the
  draft-tree size (``tree=``; EAGLE-2 verifies 60 tokens), attending to the cached context
  (costed as a prefill chunk of ``V`` tokens after the context, with logits for every token);
* ``gamma`` **draft** steps of ``batch x topk`` tokens: the draft model's decode step
  (``spec=draft,draft=<model>``), or one decoder layer of the target's shape plus the
  ``2h -> h`` feature projection and the target's LM head (EAGLE, Li et al. 2024, "EAGLE:
  Speculative Sampling Requires Rethinking Feature Uncertainty"; DeepSeek-V3's MTP module,
  DeepSeek-AI 2024, section 2.2, has the same shape);
* a fixed per-round ``overhead_us`` (sampling, tree bookkeeping; no published figure is
  bundled, default 0).

TPOT is round time / E. The verify step is ``V`` times the decode tokens: cheap while the
step streams weights (small batch), dear once it is compute-bound, which is why speculative
gains shrink as the batch grows. Output is unchanged (lossless).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .base import LOSSLESS, AccuracyCost, SpecPlan, Transform, TransformError
from .registry import register

_METHODS = ("none", "draft", "eagle", "mtp")


def expected_tokens_per_round(alpha: float, gamma: int) -> float:
    """``(1 - alpha^(gamma + 1)) / (1 - alpha)`` (Leviathan et al. 2023, eq. 1)."""
    if alpha == 0.0:
        return 1.0
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


@register
@dataclass(frozen=True)
class Speculative(Transform):
    """Speculative decoding with a draft model, an EAGLE head or MTP (module docstring)."""

    key = "spec"
    primary = "method"
    summary = "speculative decoding: draft | eagle | mtp, alpha or accept, gamma, tree, topk"
    method: str = "none"
    alpha: float = 0.8
    accept: float = 0.0  # published mean tokens per round (tau); 0: from alpha and gamma
    gamma: int = 4
    tree: int = 0  # verified tokens per sequence (draft tree size); 0: gamma + 1 (a chain)
    topk: int = 1  # draft tokens per sequence in each draft step (tree width)
    draft: str = ""  # method=draft: catalog name or config path of the draft model
    overhead_us: float = 0.0

    @classmethod
    def identity(cls) -> Speculative:
        return cls(method="none")

    @classmethod
    def example(cls) -> Speculative:
        return cls(method="eagle", alpha=0.8, gamma=4)

    def validate(self) -> None:
        if self.method not in _METHODS:
            raise TransformError("method", f"expected one of {', '.join(_METHODS)}, got '{self.method}'")
        if not 0.0 <= self.alpha < 1.0:
            raise TransformError("alpha", f"must be in [0, 1), got {self.alpha}")
        if self.gamma < 0:
            raise TransformError("gamma", f"must be >= 0, got {self.gamma}")
        if self.accept and not 1.0 <= self.accept <= self.gamma + 1:
            raise TransformError("accept", f"must be in [1, gamma + 1 = {self.gamma + 1}], got {self.accept}")
        if self.tree < 0 or self.topk < 1:
            raise TransformError("tree" if self.tree < 0 else "topk", "tree must be >= 0 and topk >= 1")
        if self.tree and self.tree < self.gamma + 1:
            raise TransformError("tree", f"a tree verifies at least gamma + 1 = {self.gamma + 1} tokens, got {self.tree}")
        if self.method == "draft" and self.gamma and not self.draft:
            raise TransformError("draft", "spec=draft needs draft=<model name or config.json>")
        if self.overhead_us < 0:
            raise TransformError("overhead_us", f"must be >= 0, got {self.overhead_us}")
        if self.method == "draft" and self.draft:
            from ...errors import InfersimError
            from ...models import get_model

            try:
                get_model(self.draft)
            except InfersimError as err:
                raise TransformError("draft", str(err)) from None

    @property
    def active(self) -> bool:
        return self.method != "none" and self.gamma > 0

    @property
    def tokens_per_round(self) -> float:
        return self.accept if self.accept else expected_tokens_per_round(self.alpha, self.gamma)

    def draft_model(self, model):
        if self.method == "draft":
            from ...models import get_model

            return get_model(self.draft)
        # one decoder layer of the target's shape (the last layer's FFN kind)
        ffn_first = model.num_layers if model.layer_ffn(model.num_layers - 1) == "dense" else 0
        return dataclasses.replace(model, name=f"{model.name}:{self.method}-head", num_layers=1,
                                   layer_windows=(), first_dense_layers=min(ffn_first, 1))

    def speculation(self, model) -> SpecPlan | None:
        if not self.active:
            return None
        return SpecPlan(verify_tokens=self.tree or self.gamma + 1, draft_steps=self.gamma, draft_tokens=self.topk,
                        tokens_per_round=self.tokens_per_round, overhead_s=self.overhead_us * 1e-6,
                        draft_model=self.draft_model(model), draft_fc=self.method in ("eagle", "mtp"))

    def extra_weight_bytes(self, model, par, prec) -> float:
        if not self.active:
            return 0.0
        from ..memory import weight_bytes_per_device

        draft = self.draft_model(model)
        w = weight_bytes_per_device(draft, par, prec)
        if self.method == "draft":
            return w.total
        # a head shares the target's embedding and LM head; adds the 2h -> h projection
        h = model.hidden_size
        return w.total - w.embeddings + 2.0 * h * h / par.attention_tp * 2.0

    def accuracy(self) -> AccuracyCost:
        return self.user_accuracy(LOSSLESS)
