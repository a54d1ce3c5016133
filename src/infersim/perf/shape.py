"""The shape of one forward step: which tokens are in the batch and what they attend to.

Every numeric field is a numpy array over scenarios (broadcast to a common
length), so one step graph covers many batch shapes at once.

Attention work is counted per attention window (``None`` = full attention)
because sliding-window layers cap what a query sees. For a prefill chunk of
``c`` new tokens after ``p`` cached tokens, with window ``w``, causal attention
touches ``sum_{j=1..c} min(p + j, w)`` (query, key) pairs; a decode token with
context ``L`` touches ``min(L, w)`` pairs. The closed forms are below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.config import ModelConfig

INF_WINDOW = np.inf


def causal_pairs(chunk, past, window=None):
    """``sum_{j=1..chunk} min(past + j, window)``: keys seen by a causal chunk."""
    c = np.asarray(chunk, dtype=np.float64)
    p = np.asarray(past, dtype=np.float64)
    w = INF_WINDOW if window is None else float(window)
    # queries j <= w - p see p + j keys; the rest see w keys
    a = np.clip(w - p, 0.0, c) if np.isfinite(w) else c
    return a * p + a * (a + 1.0) / 2.0 + (c - a) * (w if np.isfinite(w) else 0.0)


def window_cap(context, window=None):
    ctx = np.asarray(context, dtype=np.float64)
    return ctx if window is None else np.minimum(ctx, float(window))


@dataclass(frozen=True)
class AttentionLoad:
    """Attention work of one step for layers with one window size (arrays over scenarios)."""

    prefill_pairs: np.ndarray  # causal (query, key) pairs of the prefill chunks
    prefill_rect_pairs: np.ndarray  # chunk x context: what an unmasked (unfused) kernel computes
    prefill_kv_read_tokens: np.ndarray  # cached + new tokens whose K/V the prefill reads
    decode_pairs: np.ndarray  # = KV tokens read by decode (one query each)


@dataclass(frozen=True)
class StepShape:
    """One step of one replica: ``prefill_tokens`` new prompt tokens spread over
    ``prefill_seqs`` requests, plus ``decode_seqs`` requests generating one token each."""

    prefill_tokens: np.ndarray
    prefill_seqs: np.ndarray
    decode_seqs: np.ndarray
    attention: dict[int | None, AttentionLoad]
    # tokens beyond the last of each sequence whose logits are computed (speculative
    # verification samples every drafted position)
    extra_logit_tokens: np.ndarray | float = 0.0

    def scaled(self, factor: float) -> "StepShape":
        """Every count times ``factor`` (a device's expected share of the batch)."""
        return StepShape(
            self.prefill_tokens * factor, self.prefill_seqs * factor, self.decode_seqs * factor,
            {w: AttentionLoad(a.prefill_pairs * factor, a.prefill_rect_pairs * factor,
                              a.prefill_kv_read_tokens * factor, a.decode_pairs * factor)
             for w, a in self.attention.items()},
            self.extra_logit_tokens * factor,
        )

    def padded_decodes(self, decode_seqs: np.ndarray) -> "StepShape":
        """The same steps with decode-only scenarios running ``decode_seqs`` sequences (a serving
        runtime's CUDA-graph size; the padding slots read no KV, so the attention loads stay)."""
        pad = np.where(self.prefill_tokens == 0, np.asarray(decode_seqs, dtype=np.float64), self.decode_seqs)
        return StepShape(self.prefill_tokens, self.prefill_seqs, pad, self.attention)

    def take(self, index: np.ndarray) -> "StepShape":
        """The scenarios at ``index`` (integer or boolean), in that order."""
        extra = self.extra_logit_tokens
        return StepShape(
            self.prefill_tokens[index], self.prefill_seqs[index], self.decode_seqs[index],
            {w: AttentionLoad(a.prefill_pairs[index], a.prefill_rect_pairs[index],
                              a.prefill_kv_read_tokens[index], a.decode_pairs[index])
             for w, a in self.attention.items()},
            extra[index] if isinstance(extra, np.ndarray) and extra.ndim else extra,
        )

    @staticmethod
    def concat(shapes: list["StepShape"]) -> "StepShape":
        """The scenarios of ``shapes`` one after another (they share the attention windows)."""
        first = shapes[0]

        def cat(get):
            return np.concatenate([np.broadcast_to(get(s), s.prefill_seqs.shape) for s in shapes])

        return StepShape(
            cat(lambda s: s.prefill_tokens), cat(lambda s: s.prefill_seqs), cat(lambda s: s.decode_seqs),
            {w: AttentionLoad(*(cat(lambda s, w=w, f=f: getattr(s.attention[w], f)) for f in
                                ("prefill_pairs", "prefill_rect_pairs", "prefill_kv_read_tokens", "decode_pairs")))
             for w in first.attention},
            cat(lambda s: s.extra_logit_tokens),
        )

    @property
    def tokens(self) -> np.ndarray:
        return self.prefill_tokens + self.decode_seqs

    @property
    def logit_tokens(self) -> np.ndarray:
        """Tokens whose logits are computed: the last token of each prefill and each decode."""
        return self.prefill_seqs + self.decode_seqs + self.extra_logit_tokens

    @property
    def n_scenarios(self) -> int:
        return int(self.prefill_tokens.shape[0])

    @classmethod
    def uniform(cls, model: ModelConfig, *, prefill_seqs=0, chunk=0, past=0, decode_seqs=0,
                decode_context=0) -> "StepShape":
        """``prefill_seqs`` identical chunks of ``chunk`` tokens after ``past`` cached ones, and
        ``decode_seqs`` decodes at context ``decode_context`` (including the new token)."""
        b_p, c, p, b_d, l_d = np.broadcast_arrays(*(np.atleast_1d(np.asarray(x, dtype=np.float64))
                                                     for x in (prefill_seqs, chunk, past, decode_seqs, decode_context)))
        attention = {}
        for window in _windows(model):
            attention[window] = AttentionLoad(
                prefill_pairs=b_p * causal_pairs(c, p, window),
                prefill_rect_pairs=b_p * c * window_cap(p + c, window),
                prefill_kv_read_tokens=b_p * window_cap(p + c, window),
                decode_pairs=b_d * window_cap(l_d, window),
            )
        return cls(b_p * c, b_p.copy(), b_d.copy(), attention)

    @classmethod
    def from_requests(cls, model: ModelConfig, *, chunks, pasts, decode_contexts) -> "StepShape":
        """One scenario from per-request lists (heterogeneous batch, e.g. from the simulator)."""
        c = np.asarray(chunks, dtype=np.float64)
        p = np.asarray(pasts, dtype=np.float64)
        d = np.asarray(decode_contexts, dtype=np.float64)
        attention = {}
        for window in _windows(model):
            attention[window] = AttentionLoad(
                prefill_pairs=np.atleast_1d(causal_pairs(c, p, window).sum()),
                prefill_rect_pairs=np.atleast_1d((c * window_cap(p + c, window)).sum()),
                prefill_kv_read_tokens=np.atleast_1d(window_cap(p + c, window).sum()),
                decode_pairs=np.atleast_1d(window_cap(d, window).sum()),
            )
        return cls(np.atleast_1d(c.sum()), np.atleast_1d(float(c.size)), np.atleast_1d(float(d.size)), attention)


def _windows(model: ModelConfig) -> list[int | None]:
    return sorted({g.window for g in model.layer_groups()}, key=lambda w: (w is None, w or 0))
