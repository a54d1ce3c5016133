"""A synthetic evaluator with known optima, for testing optimizers and scaling the machinery.

Metrics of a configuration ``x`` (numeric parameters; categoricals compared with
the optimum):

* ``f = sum_i ((x_i - x*_i) / scale_i)^2 + sum_c [c != c*]``: one minimum, at ``optimum``;
* ``g1 = sum_i x_i^2`` and ``g2 = sum_i (x_i - 2)^2`` (Schaffer's problem N.1 in each
  coordinate): their Pareto set is ``0 <= x_i <= 2`` for every ``i``, moving together.

``busy_s`` burns that much CPU per point (a stand-in for an expensive simulation).
"""

from __future__ import annotations

import time

from ...errors import ConfigError
from ..scoring import OK
from ..space import Config
from .base import Evaluator, Outcome, check_option_keys

METRICS = ["f", "g1", "g2"]


class SyntheticEvaluator(Evaluator):
    kind = "synthetic"
    chunk_size = 64

    @classmethod
    def metric_names(cls, context):
        return list(METRICS)

    @classmethod
    def check(cls, context, origin) -> None:
        opts = context.options
        check_option_keys(context, ("optimum", "scale", "busy_s"), origin)
        if not isinstance(opts.get("optimum", {}), dict):
            raise ConfigError(origin, "evaluator.options.optimum", "expected a mapping parameter -> value")

    def evaluate(self, configs: list[Config]) -> list[Outcome]:
        opts = self.context.options
        optimum = opts.get("optimum", {})
        scale = opts.get("scale", {})
        busy = float(opts.get("busy_s", 0.0))
        out = []
        for config in configs:
            if busy > 0:
                end = time.process_time() + busy
                while time.process_time() < end:
                    pass
            f = g1 = g2 = 0.0
            for name, value in config.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    f += float(name in optimum and value != optimum[name])
                    continue
                x = float(value)
                f += ((x - float(optimum.get(name, 0.0))) / float(scale.get(name, 1.0))) ** 2
                g1 += x * x
                g2 += (x - 2.0) ** 2
            out.append(Outcome(OK, {"f": f, "g1": g1, "g2": g2}))
        return out
