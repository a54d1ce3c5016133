"""Optuna samplers behind the ask/tell interface: TPE, CMA-ES, NSGA-II.

Optuna (Akiba et al., KDD 2019) keeps its own in-memory study; our results
database stays the record. Conditional parameters are asked define-by-run
(an inactive one is not suggested and takes its default). Constraints reach
the samplers through ``constraints_func`` (violations <= 0 mean feasible);
rejected and failed points are told as failed trials.
"""

from __future__ import annotations

import math
import warnings

from ...errors import ConfigError, InfersimError
from ..space import Categorical, FloatRange, IntRange, Param
from .base import Feedback, Optimizer, Trial, register

_BIG = 1e12  # stands in for an infinite violation (a metric the point did not produce)


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise InfersimError("this optimizer needs optuna: pip install 'infersim[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _constraints(trial) -> list[float]:
    return trial.user_attrs.get("constraints", [])


class OptunaSearch(Optimizer):
    """An Optuna sampler (``sampler``: the subclass's key unless given) asked and told trial by trial.
    Importing this module does not import Optuna; constructing an optimizer does."""

    def __init__(self, space, scoring, seed=0, options=None, *, sampler: str | None = None) -> None:
        super().__init__(space, scoring, seed, options)
        sampler = sampler or self.key
        optuna = import_optuna()
        samplers = optuna.samplers
        # Optuna >= 5 takes constraints per trial (Trial.set_constraint); older ones via constraints_func
        self._per_trial_constraints = hasattr(optuna.trial.Trial, "set_constraint")
        cfunc = _constraints if scoring.constraints and not self._per_trial_constraints else None
        opts = self.options
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings (multivariate, group)
            try:
                impl = self._sampler(samplers, sampler, seed, cfunc, opts)
            except (ValueError, TypeError) as exc:  # an option optuna refuses (population_size: 1, 'x')
                raise ConfigError("the study", "optimizer.options", f"{exc} (optimizer {sampler}, options {opts})"
                                  ) from None
            directions = ["minimize" if o.direction == "min" else "maximize" for o in scoring.objectives]
            self.study = optuna.create_study(directions=directions, sampler=impl)
        self._fail = optuna.trial.TrialState.FAIL

    @staticmethod
    def _sampler(samplers, sampler: str, seed: int, cfunc, opts: dict):
        if sampler == "tpe":
            # group=True lets the multivariate TPE handle conditional (define-by-run) parameters
            impl = samplers.TPESampler(seed=seed, constraints_func=cfunc,
                                       n_startup_trials=int(opts.get("n_startup_trials", 10)),
                                       multivariate=bool(opts.get("multivariate", True)),
                                       group=bool(opts.get("multivariate", True)))
        elif sampler == "nsga2":
            impl = samplers.NSGAIISampler(seed=seed, constraints_func=cfunc,
                                          population_size=int(opts.get("population_size", 50)),
                                          mutation_prob=opts.get("mutation_prob"),
                                          crossover_prob=float(opts.get("crossover_prob", 0.9)))
        elif sampler == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise InfersimError("optimizer 'cmaes' needs the cmaes package: pip install 'infersim[search]'") from None
            impl = samplers.CmaEsSampler(seed=seed, sigma0=opts.get("sigma0"),
                                         n_startup_trials=int(opts.get("n_startup_trials", 1)),
                                         warn_independent_sampling=False)
        else:
            raise InfersimError(f"unknown optuna sampler '{sampler}'")
        return impl

    def _suggest(self, trial, p: Param):
        if isinstance(p, Categorical):
            return trial.suggest_categorical(p.name, list(p.values))
        if isinstance(p, IntRange):
            if p.log:
                return trial.suggest_int(p.name, p.low, p.high, log=True)
            return trial.suggest_int(p.name, p.low, p.high, step=p.step)
        if isinstance(p, FloatRange):
            return trial.suggest_float(p.name, p.low, p.high, log=p.log)
        raise TypeError(f"unsupported parameter {p!r}")

    def ask(self, n: int) -> list[Trial]:
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(n):
                handle = self.study.ask()
                config = {}
                for p in self.space.params:
                    if not self.space.is_active(p, config):
                        config[p.name] = p.default
                    elif p.is_fixed:
                        config[p.name] = p.values[0]  # type: ignore[attr-defined]
                    else:
                        config[p.name] = self._suggest(handle, p)
                out.append(self._trial(config, handle))
        return out

    def tell(self, trial: Trial, feedback: Feedback) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if feedback.objectives is None:
                self.study.tell(trial.handle, state=self._fail)
                return
            violations = [v if math.isfinite(v) else _BIG for v in feedback.violations]
            if self._per_trial_constraints:
                for j, v in enumerate(violations):
                    trial.handle.set_constraint(f"c{j}", v)
            elif violations:
                trial.handle.set_user_attr("constraints", violations)
            self.study.tell(trial.handle, list(feedback.objectives))


@register
class TPESearch(OptunaSearch):
    """Optuna's TPE (Bergstra et al., NeurIPS 2011), multivariate with groups by default."""

    key = "tpe"
    options_allowed = frozenset({"n_startup_trials", "multivariate"})


@register
class CmaEsSearch(OptunaSearch):
    """Optuna's CMA-ES sampler (Hansen's CMA-ES through the ``cmaes`` package): one objective, numbers."""

    key = "cmaes"
    options_allowed = frozenset({"sigma0", "n_startup_trials"})

    @classmethod
    def check(cls, n_objectives: int, params: list) -> str | None:
        if n_objectives > 1:
            return "cmaes optimizes one objective; use nsga2 or tpe for several"
        if not any(isinstance(p, (IntRange, FloatRange)) for p in params):
            return "cmaes needs numeric (int/float) parameters; use tpe for categorical spaces"
        return None

    @classmethod
    def default_batch(cls, params: list, chunk_size: int) -> int:
        """One CMA-ES generation: population ``4 + floor(3 ln n)`` (Hansen's default)."""
        n = sum(1 for p in params if isinstance(p, (IntRange, FloatRange)))
        return 4 + int(3 * math.log(max(n, 1)))


@register
class NSGA2Search(OptunaSearch):
    """Optuna's NSGA-II (Deb et al., IEEE TEC 2002) for several objectives."""

    key = "nsga2"
    options_allowed = frozenset({"population_size", "mutation_prob", "crossover_prob"})
