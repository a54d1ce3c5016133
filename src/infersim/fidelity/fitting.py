"""The pieces every calibration stage fits with: bounded parameters named by efficiency field
(flat names, :data:`infersim.hardware.efficiency.FLAT_FIELDS`), a robust least-squares fit of
``log(predicted / measured)`` and the rounding of what is written.

The fit minimizes a robust (soft-L1) loss of ``log(predicted / measured)`` with bounded
parameters (``scipy.optimize.least_squares``, trust-region reflective), which targets relative
error as MdAPE does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InfersimError
from ..hardware.device import Device
from ..hardware.schema import EfficiencySpec
from .kernels import KernelSet

LOSS_SCALE = 0.03


@dataclass(frozen=True)
class Param:
    """One fitted number: a field of EfficiencySpec (``field`` or ``field.key`` for dict fields)."""

    name: str
    lower: float
    upper: float
    initial: float
    log: bool = False  # optimized as log10

    def to_x(self, value: float) -> float:
        v = min(max(value, self.lower), self.upper)
        return math.log10(v) if self.log else v

    def from_x(self, x: float) -> float:
        return 10.0 ** x if self.log else x

    @property
    def bounds(self) -> tuple[float, float]:
        return (math.log10(self.lower), math.log10(self.upper)) if self.log else (self.lower, self.upper)


def apply_params(eff: EfficiencySpec, params: Sequence[Param], values: Sequence[float]) -> EfficiencySpec:
    """``eff`` with the named fields (dotted names: dict entries) set to ``values``."""
    update: dict[str, object] = {}
    for p, v in zip(params, values):
        if "." in p.name:
            name, key = p.name.split(".", 1)
            d = dict(update.get(name, getattr(eff, name)))
            d[int(key) if key.isdigit() else key] = float(v)
            update[name] = d
        else:
            update[p.name] = float(v)
    return eff.model_copy(update=update)


def with_efficiency(device: Device, eff: EfficiencySpec) -> Device:
    """``device`` with another efficiency section (spec and derived view kept in step)."""
    spec = device.spec.model_copy(update={"efficiency": eff})
    return dataclasses.replace(device, efficiency=eff, spec=spec)


def current_value(eff: EfficiencySpec, name: str, default: float) -> float:
    """The value of parameter ``name`` in ``eff``; an MLA override not set yet starts from the
    attention rows' value (the MLA stage is fitted after the attention stage)."""
    if "." in name:
        field_name, key = name.split(".", 1)
        table = getattr(eff, field_name)
        key = int(key) if key.isdigit() else key
        if key in table:
            return table[key]
        return current_value(eff, key, default) if field_name == "mla_overrides" else default
    value = getattr(eff, name)
    return default if value is None else value



def robust_mdape(pred: np.ndarray, meas: np.ndarray) -> float:
    """MdAPE over the rows that have a prediction (NaN: none has)."""
    ok = np.isfinite(pred)
    return float(np.median(np.abs(pred[ok] / meas[ok] - 1.0))) if ok.any() else math.nan


def fit_stage(device: Device, eff: EfficiencySpec, kernels: KernelSet, meas: np.ndarray, weights: np.ndarray,
               params: list[Param], max_nfev: int) -> tuple[EfficiencySpec, float]:
    try:
        from scipy.optimize import least_squares
    except ImportError:
        raise InfersimError("calibration needs scipy; install it with: pip install 'infersim[fidelity]'") from None

    x0 = np.array([p.to_x(current_value(eff, p.name, p.initial)) for p in params])
    lower = np.array([p.bounds[0] for p in params])
    upper = np.array([p.bounds[1] for p in params])
    x0 = np.clip(x0, lower + 1e-9 * (upper - lower), upper - 1e-9 * (upper - lower))
    sqrt_w = np.sqrt(weights)

    def residual(x: np.ndarray) -> np.ndarray:
        e = apply_params(eff, params, [p.from_x(v) for p, v in zip(params, x)])
        pred = kernels.predict(with_efficiency(device, e))
        r = np.log(np.maximum(pred, 1e-15) / meas)
        return np.where(np.isfinite(r), r, 10.0) * sqrt_w

    scale = np.maximum(upper - lower, 1e-12) / 10.0
    res = least_squares(residual, x0, bounds=(lower, upper), loss="soft_l1", f_scale=LOSS_SCALE,
                        x_scale=scale, diff_step=1e-4, max_nfev=max_nfev)
    fitted = apply_params(eff, params, [p.from_x(v) for p, v in zip(params, res.x)])
    return fitted, float(res.cost)


def _round_sig(value: float, digits: int = 4) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def round_efficiency(eff: EfficiencySpec, digits: int = 4) -> EfficiencySpec:
    """Every fitted float of ``eff`` rounded to ``digits`` significant digits (what the YAML holds)."""
    update = {}
    for name, value in eff.flat().items():
        if isinstance(value, float):
            update[name] = _round_sig(value, digits)
        elif isinstance(value, dict):
            update[name] = {k: _round_sig(v, digits) if isinstance(v, float) else v for k, v in value.items()}
    return eff.model_copy(update=update)

