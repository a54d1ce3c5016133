"""The serving-simulation evaluator: the extension point for ``evaluator: simulation``.

It is a :class:`~infersim.search.evaluators.base.PerPointEvaluator`: the static
model rejects configurations that cannot divide or fit before any simulation
(and, with ``screen_slo_factor``, those whose static estimate misses an SLO by
more than that factor); each survivor is simulated by ``evaluate_one``.

Wiring it needs one function from :mod:`infersim.serving`: ``simulate(scenario)
-> metrics`` with TTFT/TPOT percentiles and SLO goodput. Until the serving
package exposes it, a study that asks for this evaluator fails at load time with
a message saying so (before any evaluation).
"""

from __future__ import annotations

import importlib

from ...errors import ConfigError
from ..space import Config
from .base import PerPointEvaluator


def serving_simulate():
    """``infersim.serving.simulate`` when the serving simulator provides it, else None."""
    try:
        module = importlib.import_module("infersim.serving")
    except ImportError:
        return None
    return getattr(module, "simulate", None)


class SimulationEvaluator(PerPointEvaluator):
    kind = "simulation"
    chunk_size = 1

    @classmethod
    def check(cls, context, origin) -> None:
        if serving_simulate() is None:
            raise ConfigError(origin, "evaluator", "the serving simulator (infersim.serving.simulate) is not "
                              "available in this version yet; use evaluator 'static' or 'estimate'")

    def evaluate_one(self, config: Config, static_metrics: dict) -> dict:  # pragma: no cover - needs serving
        raise NotImplementedError("simulation-backed evaluation waits for infersim.serving.simulate")
