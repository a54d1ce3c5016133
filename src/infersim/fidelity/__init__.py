"""Fidelity: measured kernel latencies in, prediction-error metrics out.

* :mod:`infersim.fidelity.measurements` reads measurements into one long-format
  table (aiconfigurator-core's bundled GPU data, or a user's CSV / parquet file).
* :mod:`infersim.fidelity.metrics` scores predictions against them (MdAPE, p90,
  signed bias; per device x op) and splits rows into train / test sets.

See ``DATA.md`` in this folder for what the aiconfigurator-core data holds and how
its columns are interpreted. Needs ``pyarrow`` (``pip install 'infersim[fidelity]'``).
"""

from __future__ import annotations

from ..errors import InfersimError

try:
    import pyarrow  # noqa: F401
except ImportError:  # pragma: no cover - exercised only without pyarrow
    raise InfersimError(
        "infersim.fidelity needs pyarrow; install it with: pip install 'infersim[fidelity]'"
    ) from None

from .measurements import (
    COLUMNS,
    OPS,
    SCHEMA,
    aiconfigurator_systems_dir,
    empty_table,
    load_aiconfigurator,
    load_measurements,
    save_measurements,
)
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
