"""Evaluators: static (vectorized cost model), loaded (static under load: queueing, P/D pools), estimate
(exact, per point), simulation, synthetic.

The package imports an evaluator's module when one is named (``infersim plan`` needs only ``loaded``);
``REGISTRY`` (kind -> class, each class's ``kind`` its key) imports them all on first use."""

from ...lazy import lazy_exports

_EXPORTS = {
    "Evaluator": ".base", "EvaluatorContext": ".base", "Outcome": ".base", "PerPointEvaluator": ".base",
    "evaluator_class": ".base", "evaluator_for": ".base",
    "ExactEvaluator": ".exact", "LoadedEvaluator": ".loaded", "SimulationEvaluator": ".simulation",
    "DEPLOYMENT_KNOBS": ".static", "StaticEvaluator": ".static", "SyntheticEvaluator": ".synthetic",
}
#: the registered evaluators (their ``kind`` is the key)
_REGISTERED = ("StaticEvaluator", "ExactEvaluator", "SimulationEvaluator", "SyntheticEvaluator", "LoadedEvaluator")
_lazy_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)


def _registry() -> dict:
    classes = [_lazy_getattr(name) for name in _REGISTERED]
    registry = {cls.kind: cls for cls in classes}
    if len(registry) != len(classes):
        raise ValueError("an evaluator kind is registered twice")
    return registry


def __getattr__(name: str):
    if name == "REGISTRY":
        globals()["REGISTRY"] = value = _registry()
        return value
    return _lazy_getattr(name)


__all__ = sorted([*_EXPORTS, "REGISTRY"])
