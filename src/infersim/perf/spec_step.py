"""Speculative decoding in the serving simulator's step model (mean field per decoding request).

:class:`SpeculativeStepModel` answers the :class:`~infersim.perf.step_time.StepTimeModel` calls
the simulator makes (``step_time_s``, ``step_work``, ``loads_for``, ``kv_bytes_per_token``) for a
deployment running speculative decoding (:mod:`infersim.perf.transforms.spec`). A round of ``B``
decoding requests with contexts ``L_i`` (decode pairs ``x = sum L_i``) costs

    R(prefill, B, x) = T(prefill chunks + B verify chunks of V tokens after L_i - 1 cached ones,
                         logits for all B V tokens)
                       + gamma (T_draft(B k decodes over k x) + T_fc(B k)) + overhead

with ``T`` the target's and ``T_draft`` the draft's step model (verify chunks' causal pairs
``V (x - B) + B V (V + 1) / 2``, their rectangle ``V (x + B (V - 1))`` and KV reads
``x + B (V - 1)``: exact for full attention; sliding-window layers use the same sums, an
overestimate when contexts exceed the window). A round emits ``E`` tokens per request on
average; the simulator's step emits one, so a step is charged the round's cost per token:
``R(prefill, B, x) - (1 - 1/E) R(0, B, x)`` -- prefill chunks pay their full marginal cost,
the decode round is amortized over its ``E`` tokens. This is the mean over requests: each
request advances ``E`` tokens per round in expectation, not by its own random acceptance, so
per-request latency spread from acceptance is not modelled; throughput and mean TPOT are.
At high batch the verify step (``V`` times the decode tokens) turns compute-bound and the
round costs more than ``E`` plain steps: speculation loses, as measured in vLLM and SGLang.
"""

from __future__ import annotations

import dataclasses

from ..dtypes import bytes_per_element
from .operators import OpBuilder
from .roofline import cost_ops
from .step_time import StepTimeModel
from .transforms import SpecPlan, speculation


class SpeculativeStepModel:
    """Step model of a target with speculative decoding (module docstring)."""

    def __init__(self, target: StepTimeModel, plan: SpecPlan) -> None:
        self.target = target
        self.plan = plan
        self.windows = target.windows
        self.model, self.device, self.par, self.prec = target.model, target.device, target.par, target.prec
        draft_transforms = tuple(t for t in target.options.transforms if t.speculation(target.model) is None)
        self.draft = StepTimeModel(plan.draft_model, target.device, target.par, target.prec,
                                   dataclasses.replace(target.options, transforms=draft_transforms))
        self._fc: dict[int, float] = {}
        self._keep = 1.0 - 1.0 / plan.tokens_per_round

    # ----- the round ---------------------------------------------------------------------
    def _fc_s(self, m: int) -> float:
        if not self.plan.draft_fc or m == 0:
            return 0.0
        if m not in self._fc:
            b = OpBuilder(1)
            h = self.model.hidden_size
            ab = bytes_per_element(self.prec.activation)
            b.gemm("draft.fc", float(m), h, 2 * h, weight_dtype_bytes=ab, act_dtype_bytes=ab, dtype=self.prec.activation)
            self._fc[m] = float(cost_ops(b.build(), self.device).step_time_s[0])
        return self._fc[m]

    def _verify_args(self, pt, ps, b, loads):
        v = self.plan.verify_tokens
        out = {}
        for w, (p, r, k, x) in loads.items():
            out[w] = (p + v * (x - b) + b * v * (v + 1) / 2.0, r + v * (x + b * (v - 1)), k + x + b * (v - 1), 0.0)
        return int(pt + b * v), int(ps + b), out, int(b * (v - 1))

    def _draft_loads(self, loads, b):
        k = self.plan.draft_tokens
        fallback = loads[self.windows[-1]][3]
        return {w: (0.0, 0.0, 0.0, k * (loads[w][3] if w in loads else fallback)) for w in self.draft.windows}

    def _round_s(self, pt, ps, b, loads) -> float:
        vpt, vps, vloads, extra = self._verify_args(pt, ps, b, loads)
        t = self.target.step_time_s(vpt, vps, 0, vloads, extra)
        k = self.plan.draft_tokens
        draft = self.draft.step_time_s(0, 0, b * k, self._draft_loads(loads, b)) + self._fc_s(b * k)
        return t + self.plan.draft_steps * draft + self.plan.overhead_s

    # ----- StepTimeModel's public calls ------------------------------------------------------
    def step_time_s(self, prefill_tokens, prefill_seqs, decode_seqs, loads) -> float:
        if decode_seqs == 0:
            return self.target.step_time_s(prefill_tokens, prefill_seqs, 0, loads)
        full = self._round_s(prefill_tokens, prefill_seqs, decode_seqs, loads)
        if prefill_tokens == 0:
            return full / self.plan.tokens_per_round
        decode_only = {w: (0.0, 0.0, 0.0, x) for w, (_, _, _, x) in loads.items()}
        return full - self._keep * self._round_s(0, 0, decode_seqs, decode_only)

    def step_work(self, prefill_tokens, prefill_seqs, decode_seqs, loads) -> tuple[float, float]:
        if decode_seqs == 0:
            return self.target.step_work(prefill_tokens, prefill_seqs, 0, loads)
        vpt, vps, vloads, extra = self._verify_args(prefill_tokens, prefill_seqs, decode_seqs, loads)
        f, nb = self.target.step_work(vpt, vps, 0, vloads, extra)
        df, db = self.draft.step_work(0, 0, decode_seqs * self.plan.draft_tokens,
                                      self._draft_loads(loads, decode_seqs))
        return f + self.plan.draft_steps * df, nb + self.plan.draft_steps * db

    def loads_for(self, chunks, pasts, decode_contexts):
        return self.target.loads_for(chunks, pasts, decode_contexts)

    def step_time_for(self, chunks, pasts, decode_contexts) -> float:
        import numpy as np

        c = np.asarray(chunks)
        return self.step_time_s(int(c.sum()), int(c.size), int(np.asarray(decode_contexts).size),
                                self.loads_for(chunks, pasts, decode_contexts))

    def kv_bytes_per_token(self) -> float:
        """The target's KV per token plus the draft's (its own cache, or the head's one layer)."""
        return self.target.kv_bytes_per_token() + self.draft.kv_bytes_per_token()


def speculative_step_model(stm: StepTimeModel, transforms) -> StepTimeModel | SpeculativeStepModel:
    """``stm`` wrapped when ``transforms`` run speculative decoding, else ``stm`` itself."""
    plan = speculation(transforms, stm.model) if transforms else None
    return stm if plan is None else SpeculativeStepModel(stm, plan)
