"""Fit a device's efficiency parameters to measured kernel latencies (``infersim calibrate``).

Only the :class:`~infersim.hardware.schema.EfficiencySpec` is fitted; the spec-sheet
numbers (peaks, bandwidths, compute units) stay as they are. The parameters are few
and physical (achievable fractions, ramp half-points, fixed costs, tile choice,
collective latency and bandwidth fractions), and each op family is fitted on its own
rows, in order, with what earlier stages fitted held fixed, by the stages of
:data:`infersim.fidelity.stages.CALIBRATION_STAGES` (that module lists what each fits).

The fit minimizes a robust (soft-L1) loss of ``log(predicted / measured)`` with
bounded parameters (:mod:`infersim.fidelity.fitting`), which targets relative error as
MdAPE does; every op in a stage weighs the same. Large tables are subsampled
deterministically (by row hash) to ``max_rows`` per stage.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import InfersimError
from ..hardware.device import Device
from ..hardware.schema import EfficiencySpec
from .fitting import Param, apply_params, current_value, robust_mdape, round_efficiency, with_efficiency
from .kernels import build_kernels
from .measurements import hash_rows
from .metrics import SPLIT_COLUMNS
from .stages import CALIBRATION_STAGES, TILE_SETS, StageContext

__all__ = ["Calibration", "Param", "StageFit", "apply_params", "calibrate", "context_math_from_rows",
           "round_efficiency", "with_efficiency"]


def context_math_from_rows(table: pa.Table, min_matches: int = 10, min_seq_len: int = 1024) -> str | None:
    """Whether context attention over an fp8 KV cache with bf16 activations runs fp8 or bf16
    math on the measured device: "fp8" where such rows time closer to fp8-activation rows of
    the same shape than to bf16 / bf16-cache ones (median over shapes of long, compute-bound
    prefills), "activation" otherwise; None without ``min_matches`` shapes measured all three
    ways."""
    cols = ("op", "batch", "seq_len", "kv_len", "num_heads", "num_kv_heads", "head_dim", "variant", "dtype",
            "kv_dtype", "latency_s")
    if any(c not in table.column_names for c in cols):
        return None
    data = {c: table.column(c).to_pylist() for c in cols}
    times: dict[tuple, dict[tuple, float]] = {}
    for i in range(table.num_rows):
        if data["op"][i] != "attention_prefill" or (data["seq_len"][i] or 0) < min_seq_len:
            continue
        shape = tuple(data[c][i] for c in cols[1:8])
        times.setdefault(shape, {})[(data["dtype"][i], data["kv_dtype"][i] or data["dtype"][i])] = data["latency_s"][i]
    closer_to_fp8 = [abs(math.log(t[("bf16", "fp8")] / t[("bf16", "bf16")])) - abs(math.log(t[("bf16", "fp8")]
                                                                                           / t[("fp8", "fp8")]))
                     for t in times.values() if {("bf16", "bf16"), ("bf16", "fp8"), ("fp8", "fp8")} <= set(t)]
    if len(closer_to_fp8) < min_matches:
        return None
    return "fp8" if float(np.median(closer_to_fp8)) > 0 else "activation"



@dataclass
class StageFit:
    """What one stage fitted, on how many rows, and how well (train rows, after the fit)."""

    stage: str
    rows: int
    params: dict[str, float]
    tile_set: str | None
    train_mdape: float
    cost: float


@dataclass
class Calibration:
    """A calibrated efficiency section and how it was obtained."""

    efficiency: EfficiencySpec
    device: Device
    stages: list[StageFit] = field(default_factory=list)
    rows: int = 0

    @property
    def train_mdape(self) -> float:
        vals = [s.train_mdape for s in self.stages if s.rows]
        return float(np.median(vals)) if vals else math.nan


def _variants(table: pa.Table) -> np.ndarray:
    """Each row's ``variant`` ("" where the table has no such column)."""
    if "variant" not in table.column_names:
        return np.full(table.num_rows, "", dtype=object)
    return np.asarray(table.column("variant").to_numpy(zero_copy_only=False), dtype=object).astype(str)


def _subsample(table: pa.Table, rows: np.ndarray, ops: np.ndarray, max_rows: int) -> np.ndarray:
    """At most ``max_rows`` of ``rows``, the same share per op, picked by a stable row hash."""
    if rows.size <= max_rows:
        return rows
    h = hash_rows(table.take(pa.array(rows)), SPLIT_COLUMNS, seed=7)
    op_vals = ops[rows]
    uniq = np.unique(op_vals)
    per_op = max(max_rows // len(uniq), 1)
    keep = []
    for op in uniq:
        idx = np.flatnonzero(op_vals == op)
        keep.append(rows[idx[np.argsort(h[idx], kind="stable")[:per_op]]])
    return np.sort(np.concatenate(keep))


def calibrate(
    table: pa.Table,
    device: Device,
    *,
    max_rows: int = 20_000,
    tile_sets: Sequence[str] | None = None,
    max_nfev: int = 200,
    source: str | None = None,
    blocks: bool = True,
    warm_cache: bool = True,
    validation: pa.Table | None = None,
    progress=None,
) -> Calibration:
    """Fit ``device``'s efficiency section to the measured rows of ``table``.

    ``table``: long-format measurements, all of this device (the caller selects rows).
    Stages without rows keep the device's values. ``tile_sets``: names from
    :data:`TILE_SETS` to try (default: the GPU and single-tile sets on GPUs, the CPU
    and single-tile sets elsewhere). ``source`` is recorded in the efficiency section.
    ``blocks``: fit the per-thread-block attention terms (False: the FLOPs-and-bytes model).
    ``warm_cache``: fit the warm-cache terms (the measured kernels were run back to back on
    the same buffers; False: every byte from DRAM). ``validation``: other rows of the device on
    which each stage chooses among its candidates (tile sets, query groups, warm-cache terms,
    native head sizes) instead of on the fitted rows. ``progress(message, done, total)`` is called
    after each stage.
    """
    if table.num_rows == 0:
        raise InfersimError(f"no measurements to calibrate '{device.name}' on")
    kernels_all = build_kernels(table)
    meas_all = np.asarray(table.column("latency_s").to_numpy(), dtype=np.float64)
    ops = np.asarray(table.column("op").to_numpy(zero_copy_only=False), dtype=object).astype(str)
    variants = _variants(table)
    if tile_sets is None:
        tile_sets = ("gpu", "gpu-splitk", "single") if device.category == "gpu" else ("cpu", "single")
    for name in tile_sets:
        if name not in TILE_SETS:
            raise InfersimError(f"unknown tile set '{name}'; expected one of {', '.join(TILE_SETS)}")
    eff = device.efficiency
    context_math = context_math_from_rows(table)
    if context_math is not None:
        eff = eff.model_copy(update={"fp8_kv_context_math": context_math})
    fits: list[StageFit] = []
    used = 0
    if validation is not None and validation.num_rows:
        val_kernels = build_kernels(validation)
        val_meas = np.asarray(validation.column("latency_s").to_numpy(), dtype=np.float64)
        val_ops = np.asarray(validation.column("op").to_numpy(zero_copy_only=False), dtype=object).astype(str)
        val_variants = _variants(validation)
    stages = list(CALIBRATION_STAGES.values())
    for done, stage in enumerate(stages, start=1):
        if progress:
            progress(f"fitting the {stage.name} stage", done - 1, len(stages))
        in_stage = np.isin(ops, stage.ops)
        in_stage[kernels_all.unsupported] = False
        in_stage[in_stage] = stage.fit_rows(variants[in_stage])
        rows = np.flatnonzero(in_stage)
        if rows.size == 0:
            continue
        rows = _subsample(table, rows, ops, max_rows)
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[rows] = True
        kernels = kernels_all.subset(mask)
        meas = meas_all[rows]
        op_rows = ops[rows]
        uniq, counts = np.unique(op_rows, return_counts=True)
        per_op = dict(zip(uniq, counts))
        weights = np.array([rows.size / (len(uniq) * per_op[o]) for o in op_rows])
        ctx = StageContext(device, kernels, meas, weights, set(uniq), blocks, warm_cache, tuple(tile_sets), max_nfev)
        if validation is not None and validation.num_rows:
            in_val = np.isin(val_ops, stage.ops)
            in_val[val_kernels.unsupported] = False
            in_val[in_val] = stage.fit_rows(val_variants[in_val])
            if in_val.any():
                keep = _subsample(validation, np.flatnonzero(in_val), val_ops, max_rows)
                mask = np.zeros(validation.num_rows, dtype=bool)
                mask[keep] = True
                ctx.validation = (val_kernels.subset(mask), val_meas[keep])
        best = stage.run(ctx, eff)
        fitted, tiles, params, cost = best.efficiency, best.label, best.params, best.cost
        eff = round_efficiency(fitted)
        pred = kernels.predict(with_efficiency(device, eff))
        fits.append(StageFit(stage.name, int(rows.size), {p.name: current_value(eff, p.name, math.nan) for p in params},
                             tiles, robust_mdape(pred, meas), cost))
        used += int(rows.size)
    today = _dt.date.today().isoformat()
    train = np.median([f.train_mdape for f in fits]) if fits else math.nan
    if progress:
        progress("fitted every stage", len(stages), len(stages))
    text = (f"infersim calibrate ({today}): fitted to {source or 'measurements'} ({used} rows used in the fit); "
            f"fit MdAPE {100 * train:.1f}% (median over stages; "
            + ", ".join(f"{f.stage} {100 * f.train_mdape:.1f}%" for f in fits) + ")")
    eff = eff.model_copy(update={"source": text})
    return Calibration(eff, with_efficiency(device, eff), fits, used)
