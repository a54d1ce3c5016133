"""Fidelity: measured kernel latencies in, prediction-error metrics out.

* :mod:`infersim.fidelity.measurements` reads measurements into one long-format
  table (aiconfigurator-core's bundled GPU data, or a user's CSV / parquet file).
* :mod:`infersim.fidelity.metrics` scores predictions against them (MdAPE, p90,
  signed bias; per device x op) and splits rows into train / test sets.
* :mod:`infersim.fidelity.kernels` turns rows into the step graph's operators and
  predicts them (:func:`predict`); :mod:`~infersim.fidelity.calibrate` fits a device's
  efficiency section to measurements (:func:`calibrate`);
  :mod:`~infersim.fidelity.transfer` carries it to another device;
  :mod:`~infersim.fidelity.evaluate` scores analytical / calibrated / transferred
  predictions on held-out rows (:func:`evaluate`, what ``infersim fidelity`` prints);
  :mod:`~infersim.fidelity.residual` adds an optional learned residual;
  :mod:`~infersim.fidelity.profile` measures the local machine (``infersim profile``).

See ``DATA.md`` in this folder for what the aiconfigurator-core data holds and how
its columns are interpreted. Needs ``pyarrow``; calibration needs ``scipy``, the learned
residual ``scikit-learn`` (``pip install 'infersim[fidelity]'``).
"""

from __future__ import annotations

from ..errors import InfersimError

try:
    import pyarrow  # noqa: F401
except ImportError:  # pragma: no cover - exercised only without pyarrow
    raise InfersimError(
        "infersim.fidelity needs pyarrow; install it with: pip install 'infersim[fidelity]'"
    ) from None

from .measurements import COLUMNS, OPS, SCHEMA, empty_table
from .aic_tables import aiconfigurator_systems_dir, load_aiconfigurator
from .measurement_files import load_measurements, save_measurements
from .calibrate import Calibration, calibrate
from .evaluate import FidelityReport, evaluate
from .kernels import build_kernels, predict
from .metrics import (
    ErrorSummary,
    ape,
    deterministic_split,
    signed_error,
    summarize,
    summarize_groups,
)

__all__ = [
    "COLUMNS",
    "Calibration",
    "FidelityReport",
    "build_kernels",
    "calibrate",
    "evaluate",
    "predict",
    "OPS",
    "SCHEMA",
    "ErrorSummary",
    "aiconfigurator_systems_dir",
    "ape",
    "deterministic_split",
    "empty_table",
    "load_aiconfigurator",
    "load_measurements",
    "save_measurements",
    "signed_error",
    "summarize",
    "summarize_groups",
]
