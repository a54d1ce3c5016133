"""Pipeline-parallel replicas: micro-batches of ``pp`` engines flowing through ``pp`` shared stages.

A ``pp``-stage replica runs ``pp`` engines (vLLM's virtual engines), each with its own scheduler,
batch and KV share; a step's pipeline latency ``t`` covers every layer on ``tp`` devices plus
``pp - 1`` activation transfers. The engines' micro-batches share the stages: stage ``s`` holds one
micro-batch at a time, for ``t / pp`` (stages balanced), and an engine forms its next batch when its
previous micro-batch leaves the last stage. That is a cyclic flow shop of ``pp`` jobs on ``pp``
machines: the simulator steps a replica's engines through a :class:`StageClock` (its micro-batches
enter stage 0 in the order their engines formed them), :func:`flow_shop_finish_s` runs the same
rule on a table of step times.

* Equal step times: the flow shop runs without a bubble, every engine steps every ``t``, exactly as
  independent engines would (decode-only steady state, offline batches of equal steps).
* Two engines: micro-batches alternate through the stages, and unrolling the recursion gives stage
  0's entries ``e_(j+1) = e_j + max(tau_(j-1), tau_j)``: the replica's period per micro-batch is the
  larger stage time of two consecutive micro-batches (of different engines), exactly.
* Unequal step times (a prefill-bearing step of ``t_m`` beside decode steps of ``t_d``): the stages
  hold every engine to the slowest micro-batch in flight, one round of all ``pp`` engines takes
  ``max_k t_k`` instead of each engine's own ``t_k``. With each engine's steps independently mixed
  with probability ``p`` (:func:`lockstep_slowdown`), independent engines would overstate the
  replica's step rate by up to ``E[max_k t_k] / E[t_k]`` (within 1 % of the simulated flow shop
  for ``pp = 2``, 5 % high for ``pp = 4``, where rounds overlap a little). The load-aware static
  model stretches a PP server's steps by that factor.
"""

from __future__ import annotations

import numpy as np


class StageClock:
    """The ``pp`` stages of one replica: when each finishes the micro-batch it holds.

    A micro-batch formed at ``ready`` with pipeline latency ``d`` spends ``tau = d / pp`` on each
    stage and enters stage ``s`` when the stage and its own stage ``s - 1`` are both done:
    ``x_s = max(x_(s-1), free_s) + tau`` with ``x_(-1) = ready``. Unrolled, ``x_s = ready + (s + 1)
    tau + w_s`` with the wait ``w_s = max(w_(s-1), free_s - ready - s tau)``, ``w_(-1) = 0``, so a
    micro-batch that never waits leaves at ``ready + d`` (the same float as an engine of its own)."""

    __slots__ = ("pp", "free")

    def __init__(self, pp: int) -> None:
        self.pp = pp
        self.free = [0.0] * pp

    def clear_at(self, t: float) -> bool:
        """Every stage is free by ``t`` (stages finish in order, so the last one says it)."""
        return self.free[-1] <= t

    def through(self, ready: float, d: float) -> float:
        """Send a micro-batch formed at ``ready`` with pipeline latency ``d`` through the stages;
        returns when it leaves the last one."""
        pp = self.pp
        free = self.free
        tau = d / pp
        wait = 0.0
        for s in range(pp - 1):
            w = free[s] - ready - s * tau
            if w > wait:
                wait = w
            free[s] = ready + (s + 1) * tau + wait
        w = free[pp - 1] - ready - (pp - 1) * tau
        if w > wait:
            wait = w
        end = ready + d + wait if wait > 0.0 else ready + d
        free[pp - 1] = end
        return end

    def ran(self, end: float, d: float) -> None:
        """An engine's steps ran back to back without waiting (the stages were clear), the last one
        of pipeline latency ``d`` leaving at ``end``: it left stage ``s`` at ``end - (pp - 1 - s) d / pp``."""
        pp = self.pp
        tau = d / pp
        free = self.free
        for s in range(pp - 1):
            free[s] = end - (pp - 1 - s) * tau
        free[pp - 1] = end


def flow_shop_finish_s(step_times_s, pp: int) -> np.ndarray:
    """When each step finishes when ``pp`` engines send their steps through ``pp`` stages in turn.

    ``step_times_s[r, k]``: the pipeline latency of engine ``k``'s ``r``-th step (stage time
    ``t / pp``). Engine ``k``'s ``r``-th micro-batch enters stage 0 after its previous one left the
    last stage and after engine ``k - 1``'s ``r``-th micro-batch (round-robin order through each
    stage: ``(r, k)`` follows ``(r, k - 1)`` and ``(r - 1, pp - 1)``), and each later stage after
    the stage before it and after the micro-batch ahead of it there. Returns the finish times
    ``[r, k]`` (from 0)."""
    t = np.asarray(step_times_s, dtype=np.float64).tolist()
    rounds, engines = len(t), len(t[0]) if t else 0
    stages = StageClock(pp)
    done = np.zeros((rounds, engines))
    ready = [0.0] * engines  # when each engine's previous step finished
    for r in range(rounds):
        for k in range(engines):
            done[r, k] = ready[k] = stages.through(ready[k], t[r][k])
    return done


def lockstep_steps_s(step_s, share, pp: int) -> list[np.ndarray]:
    """How long each kind of an engine's steps lasts when a round of the replica's ``pp`` engines takes
    its slowest step (whole-round lockstep, the other engines' steps independent draws).

    ``step_s[i]``: the pipeline latency of kind ``i``, ``share[i]``: the share of an engine's steps of
    that kind (summing to 1; arrays broadcast). A step of kind ``i`` lasts ``E[max(t_i, M)]`` with
    ``M`` the slowest of the other ``pp - 1`` engines' steps, CDF ``F^(pp - 1)``:
    ``E[max(t, M)] = t + int_t^inf (1 - F(y)^(pp - 1)) dy``, a sum over the sorted step times. Their mean
    over the kinds is ``E[max_k t_k]`` (:func:`lockstep_slowdown` for two kinds)."""
    v = np.stack(np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in step_s)))
    w = np.broadcast_to(np.stack(np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in share))), v.shape)
    if pp <= 1:
        return list(v)
    order = np.argsort(v, axis=0)
    vs = np.take_along_axis(v, order, axis=0)
    tail = 1.0 - np.clip(np.cumsum(np.take_along_axis(w, order, axis=0), axis=0), 0.0, 1.0) ** (pp - 1)
    out = []
    for t in v:  # t + sum_j (1 - F_j^(pp-1)) |[vs_j, vs_(j+1)) beyond t|
        extra = np.zeros_like(t)
        for j in range(vs.shape[0] - 1):
            extra += tail[j] * np.maximum(vs[j + 1] - np.maximum(vs[j], t), 0.0)
        out.append(t + extra)
    return out


def chained_lockstep_steps_s(light_s, light_share, heavy_s, heavy_share, heavy_after_heavy, pp: int):
    """:func:`lockstep_steps_s` with the heavy steps (the slowest kind, ``heavy_s``: prefill-bearing
    full-budget steps) correlated along the order micro-batches enter the stages: a two-state Markov
    chain in which a heavy micro-batch is followed by a heavy one with probability ``p_HH`` =
    ``heavy_after_heavy`` (independent draws: ``heavy_share``). Returns (the light kinds' times, the
    heavy steps' time).

    A light step of kind ``i`` lasts ``E_i + P_H (t_H - E_i)`` with ``E_i`` its lockstep time among the
    light kinds and ``P_H = 1 - (1 - p_LH)^(pp - 1)`` the chance that one of the other ``pp - 1`` steps
    of its round is heavy, ``p_LH = f (1 - p_HH) / (1 - f)`` the chain's light-to-heavy probability
    (stationary share ``f``); a heavy step lasts ``t_H``. For ``pp = 2`` the flow shop is solved
    exactly (module docstring: a micro-batch ``j`` lasts ``max(tau_(j-2), tau_(j-1)) + max(tau_(j-1),
    tau_j) + tau_j - tau_(j-2)``): a light step behind a heavy one lasts ``t_H`` when the heavy one
    followed a light one, ``(t_H + t_L) / 2`` after two heavy ones, and a heavy step behind a heavy one
    that followed a light one lasts ``t_H + (t_H - t_L) / 2``; averaged over the chain, a light step
    gains ``p_LH (1 - p_HH / 2) (t_H - t_L)`` and a heavy one ``p_HH (1 - p_HH) (t_H - t_L) / 2``. Both
    forms give the mean step ``t_L + f (2 - p_HH) (t_H - t_L)`` at ``pp = 2``, the flow shop's period."""
    f = np.clip(np.asarray(heavy_share, dtype=np.float64), 0.0, 1.0)
    p_hh = np.clip(heavy_after_heavy, 0.0, 1.0)
    light = np.maximum(1.0 - f, 1e-300)
    cond = [np.asarray(w, dtype=np.float64) / light for w in light_share]
    base = lockstep_steps_s(light_s, cond, pp)
    p_lh = np.clip(f * (1.0 - p_hh) / light, 0.0, 1.0)
    if pp == 2:
        mean_light = sum(w * e for w, e in zip(cond, base))
        gain = p_lh * (1.0 - p_hh / 2.0)
        heavy = heavy_s + p_hh * (1.0 - p_hh) * np.maximum(heavy_s - mean_light, 0.0) / 2.0
    else:
        gain = 1.0 - (1.0 - p_lh) ** (pp - 1) if pp > 1 else 0.0
        heavy = np.asarray(heavy_s, dtype=np.float64)
    return [e + gain * np.maximum(heavy_s - e, 0.0) for e in base], heavy


def lockstep_slowdown(p_mixed, mixed_step_s, decode_step_s, pp: int) -> np.ndarray:
    """``E[max_k t_k] / E[t_k]`` over ``pp`` engines whose steps are mixed (``t_m``) with probability
    ``p`` each, independently, else decode-only (``t_d``): the factor by which independent engines'
    step rate would exceed the stage-coupled one. ``E[max] = t_d + (1 - (1 - p)^pp)(t_m - t_d)``,
    ``E[t] = t_d + p (t_m - t_d)``; 1 for ``pp = 1`` or equal steps."""
    p = np.clip(np.asarray(p_mixed, dtype=np.float64), 0.0, 1.0)
    extra = np.asarray(mixed_step_s, dtype=np.float64) - np.asarray(decode_step_s, dtype=np.float64)
    return (decode_step_s + (1.0 - (1.0 - p) ** pp) * extra) / (decode_step_s + p * extra)
