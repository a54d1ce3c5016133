"""How a MoE router spreads tokens over experts: the load of the busiest expert-parallel rank
and the experts it runs, per routing model (``moe_routing`` of a scenario, plan or estimate).

Three models, registered once in :data:`ROUTINGS` (a name is ``uniform``, ``balanced`` or
``power_law_<alpha>``):

* ``uniform``: each of ``T`` tokens picks ``k`` distinct experts of ``E`` uniformly at random.
  An expert is missed by a token with probability ``1 - k/E``, so ``E (1 - (1 - k/E)^T)``
  experts are active; the busiest of ``ep`` ranks holds the mean load times
  ``1 + sqrt(2 ln ep) sigma / mu`` (the maximum of ``ep`` binomial loads, Gumbel
  approximation), at most all of it.
* ``balanced``: every rank gets exactly ``T k / ep`` assignments spread over
  ``min(T k, E)`` distinct experts (aiconfigurator-core's ``balanced`` kernels; an ideal
  load balancer).
* ``power_law_<alpha>``: the skewed routing aiconfigurator-core measures its MoE kernels under
  and AIConfigurator assumes by default (``workload_distribution: str = "power_law"`` in
  ``aiconfigurator_core/sdk/config.py``; alpha 1.2 for Mixtral / Qwen-style MoE,
  ``sdk/models/moe.py``, 1.01 for DeepSeek, ``sdk/models/deepseek.py``). The generator
  (``_generate_power_law_distribution`` in ai-dynamo/aiconfigurator ``collector/helper.py``)
  draws each expert's load from a power law truncated to ``[1, 0.8 T]`` (``[0.01, 2]`` when
  ``T k <= E``), ``p(x) ~ x^-alpha``, by its inverse CDF
  ``x = ((x_max^(1-a) - x_min^(1-a)) u + x_min^(1-a))^(1/(1-a))``, scales the draws to ``T k``
  assignments, rounds them, and measures the rank with the most. Here the same draws (a fixed
  set of :data:`DRAWS` per shape, so the expectation, not a random number) give the busiest
  rank's load factor, its active experts and its largest expert's load, tabulated over
  ``log2 T`` and interpolated. One expert never holds more than ``T`` assignments (a token
  picks distinct experts): the excess goes to the others in proportion.

:func:`max_expert_load_factor` is the skew in one number: the largest expert's load over the
mean, between 1 (balanced) and ``E / k`` (one expert takes every token).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InfersimError

#: draws of the power-law generator averaged per (experts, top-k, ep, alpha)
DRAWS = 64
#: log2 of the token counts the power-law statistics are tabulated at (1 .. 2^24 tokens)
_LOG2_TOKENS = np.arange(0.0, 24.01, 0.125)


@dataclass(frozen=True)
class RoutingLoads:
    """The busiest expert-parallel rank under a routing model, per scenario: its load over the
    mean rank load (>= 1) and the distinct experts with tokens on it."""

    rank_factor: np.ndarray
    active_local: np.ndarray


def expected_active_experts(tokens, top_k: int, num_experts: int):
    """Distinct experts hit when each of ``tokens`` picks ``top_k`` distinct experts uniformly."""
    t = np.asarray(tokens, dtype=np.float64)
    return num_experts * (1.0 - np.power(1.0 - top_k / num_experts, t))


def expert_load_imbalance(assignments, groups: int):
    """Expected max / mean load over ``groups`` devices sharing ``assignments`` uniformly."""
    a = np.asarray(assignments, dtype=np.float64)
    if groups <= 1:
        return np.ones_like(a)
    mu = a / groups
    sigma = np.sqrt(a * (1.0 / groups) * (1.0 - 1.0 / groups))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 1.0 + np.sqrt(2.0 * np.log(groups)) * np.where(mu > 0, sigma / mu, 0.0)
    return np.minimum(factor, float(groups))  # cannot exceed all tokens on one device


def max_expert_load_factor(loads, top_k: int) -> float:
    """Largest expert load over the mean of ``loads`` (assignments per expert, ``T k`` in all),
    with no expert above ``T`` (a token picks ``top_k`` distinct experts): 1 when balanced,
    ``E / top_k`` when one expert takes every token."""
    loads = np.asarray(loads, dtype=np.float64)
    total = loads.sum()
    if total <= 0:
        return 1.0
    tokens = total / top_k
    return float(min(loads.max(), tokens) / (total / loads.size))


class RoutingModel:
    """One way tokens are routed over experts."""

    name: str = ""

    def loads(self, tokens, top_k: int, num_experts: int, ep: int) -> RoutingLoads:
        raise NotImplementedError


class UniformRouting(RoutingModel):
    name = "uniform"

    def loads(self, tokens, top_k, num_experts, ep):
        t = np.asarray(tokens, dtype=np.float64)
        return RoutingLoads(expert_load_imbalance(t * top_k, ep),
                            expected_active_experts(t, top_k, num_experts) / ep)


class BalancedRouting(RoutingModel):
    name = "balanced"

    def loads(self, tokens, top_k, num_experts, ep):
        t = np.asarray(tokens, dtype=np.float64)
        return RoutingLoads(np.ones_like(t), np.minimum(t * top_k, num_experts) / ep)


@dataclass(frozen=True)
class PowerLawRouting(RoutingModel):
    alpha: float = 1.2
    name = "power_law"

    def loads(self, tokens, top_k, num_experts, ep):
        t = np.asarray(tokens, dtype=np.float64)
        log_t, rank, active, _ = power_law_table(int(num_experts), int(top_k), int(ep), float(self.alpha))
        x = np.log2(np.maximum(t, 1.0))
        factor = np.interp(x, log_t, rank)
        act = np.interp(x, log_t, active)
        # below one token: the experts of that fraction of a token (nothing at 0)
        act = np.where(t < 1.0, act * np.clip(t, 0.0, 1.0), act)
        return RoutingLoads(factor, act)


#: routing models by name (``power_law`` takes its exponent as a suffix: ``power_law_1.2``)
ROUTINGS: dict[str, type[RoutingModel]] = {
    UniformRouting.name: UniformRouting,
    BalancedRouting.name: BalancedRouting,
    PowerLawRouting.name: PowerLawRouting,
}

#: the step graph's routing when none is given (see docs/efficiency.md, "MoE routing")
DEFAULT_ROUTING = "uniform"


def routing_names() -> list[str]:
    return ["uniform", "balanced", "power_law_<alpha> (e.g. power_law_1.2)"]


@lru_cache(maxsize=64)
def routing_model(name: str) -> RoutingModel:
    """:func:`parse_routing`, cached (the step graph asks once per MoE block)."""
    return parse_routing(name)


def parse_routing(name: str) -> RoutingModel:
    """The routing model called ``name``: ``uniform``, ``balanced`` or ``power_law_<alpha>``
    (alpha > 0)."""
    text = str(name).strip()
    if text in ROUTINGS and text != PowerLawRouting.name:
        return ROUTINGS[text]()
    prefix = PowerLawRouting.name + "_"
    if text.startswith(prefix):
        try:
            alpha = float(text[len(prefix):])
        except ValueError:
            alpha = float("nan")
        if np.isfinite(alpha) and alpha > 0:
            return PowerLawRouting(alpha)
        raise InfersimError(f"MoE routing '{text}': the power-law exponent must be a number > 0 "
                            f"(e.g. power_law_1.2)")
    raise InfersimError(f"unknown MoE routing '{text}'; expected one of: {', '.join(routing_names())}")


def _inverse_cdf(u, alpha: float, x_min, x_max):
    """Power law ``p(x) ~ x^-alpha`` truncated to ``[x_min, x_max]`` at quantile ``u``."""
    if abs(alpha - 1.0) < 1e-9:
        return x_min * np.power(x_max / x_min, u)
    e = 1.0 - alpha
    lo, hi = np.power(x_min, e), np.power(x_max, e)
    return np.power((hi - lo) * u + lo, 1.0 / e)


def _cap_at_tokens(loads: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Loads (..., E) with none above ``tokens`` (...,), the excess spread over the others in
    proportion to their loads (a few passes settle it)."""
    cap = tokens[..., None]
    for _ in range(8):
        over = np.maximum(loads - cap, 0.0)
        excess = over.sum(-1, keepdims=True)
        if not np.any(excess > 1e-9 * np.maximum(cap, 1.0)):
            break
        loads = loads - over
        room = np.where(loads < cap, loads, 0.0)
        share = room.sum(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            loads = loads + np.where(share > 0, excess * room / np.where(share > 0, share, 1.0), 0.0)
    return np.minimum(loads, cap)


def _exact_total(loads: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Rounded loads (..., E) brought back to ``total`` assignments the generator's way: one more
    for each of the largest experts while short, one less for each of the smallest non-empty
    ones while over."""
    delta = np.rint(total - loads.sum(-1))[..., None]
    n = loads.shape[-1]
    order = np.argsort(-loads, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[(None,) * (loads.ndim - 1)], axis=-1)
    # short: every expert gets delta // E, the delta % E largest one more
    add = np.where(delta > 0, delta // n + (rank < delta % n), 0.0)
    # over: the smallest non-empty experts give one each
    positive = loads > 0
    up = np.argsort(np.where(positive, loads, np.inf), axis=-1, kind="stable")
    nth = np.empty_like(up)
    np.put_along_axis(nth, up, np.arange(n)[(None,) * (loads.ndim - 1)], axis=-1)
    remove = np.where((delta < 0) & positive & (nth < -delta), 1.0, 0.0)
    return loads + add - remove


@lru_cache(maxsize=512)
def power_law_table(num_experts: int, top_k: int, ep: int, alpha: float):
    """The power-law generator's busiest rank over :data:`_LOG2_TOKENS`, averaged over
    :data:`DRAWS` draws with a fixed seed: (log2 tokens, rank load / mean rank load, active
    experts on it, its largest expert's load / the mean expert load)."""
    if num_experts < 1 or top_k < 1 or ep < 1:
        raise InfersimError(f"MoE routing needs experts, top-k and ep >= 1, got {num_experts}, {top_k}, {ep}")
    rng = np.random.default_rng(20261205)
    u = rng.random((DRAWS, num_experts))
    tokens = np.power(2.0, _LOG2_TOKENS)[:, None, None]
    total = tokens * top_k
    many = total > num_experts
    x_min = np.where(many, 1.0, 0.01)
    x_max = np.where(many, 0.8 * tokens, 2.0)
    x = _inverse_cdf(u[None], alpha, x_min, np.maximum(x_max, x_min * (1 + 1e-9)))
    loads = x / x.sum(-1, keepdims=True) * total
    cap = np.broadcast_to(tokens[..., 0], loads.shape[:-1]).copy()
    loads = _exact_total(np.round(_cap_at_tokens(loads, cap)), np.broadcast_to(total[..., 0], loads.shape[:-1]))
    loads = np.minimum(loads, cap[..., None])  # the top-up may not pass T either (a few tokens only)
    per_rank = -(-num_experts // ep)
    pad = per_rank * ep - num_experts
    if pad:
        loads = np.concatenate([loads, np.zeros(loads.shape[:-1] + (pad,))], axis=-1)
    ranks = loads.reshape(loads.shape[:-1] + (ep, per_rank))
    rank_sum = ranks.sum(-1)
    busiest = np.argmax(rank_sum, axis=-1)
    local = np.take_along_axis(ranks, busiest[..., None, None], axis=-2)[..., 0, :]
    mean_rank = total[..., 0] / ep
    rank_factor = np.minimum(rank_sum.max(-1) / mean_rank, ep).mean(-1)
    active = (local >= 1).sum(-1).mean(-1)
    expert_factor = (local.max(-1) / (total[..., 0] / num_experts)).mean(-1)
    return _LOG2_TOKENS, np.maximum(rank_factor, 1.0), active, expert_factor
