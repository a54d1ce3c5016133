"""The fidelity evaluation: how well the cost model predicts measured kernels.

Each device's rows are split by a hash of their shape
(:func:`~infersim.fidelity.metrics.three_way_split`; a shape is in the same split on every
device) into a fit split (60 %), a validation split (20 %: the held-out shapes of earlier
rounds, whose scores were watched while the efficiency model's structure grew; the
calibration chooses its structural candidates on it) and a test split (20 %) that no design
choice looked at, on which the headline scores are reported:

* ``analytical``: the device as given (for a catalog device, its spec-sheet numbers
  and the default efficiency curves);
* ``calibrated``: efficiency fitted to the fit split of that device's rows, its structural
  choices made on the validation split (:func:`~infersim.fidelity.calibrate.calibrate`);
* ``residual`` (optional): calibrated times a learned residual fitted on the fit split;
* ``transfer`` (held-out device): the efficiency calibrated on the source device
  (H100 SXM by default) carried to the device with
  :func:`~infersim.fidelity.transfer.transfer_efficiency`: only its spec sheet is used.

A second, independent source (``second``: kernels of the same devices measured under another
framework, e.g. aiconfigurator-core's vLLM tables next to the TensorRT-LLM ones fitted) is scored
whole with the same calibrations: nothing was fitted or chosen on it.

Scores are MdAPE, p90 APE and median signed bias per device x op family, and over all
of a device's rows (family ``all``).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InfersimError
from ..hardware.device import Device
from .calibrate import Calibration, calibrate, with_efficiency
from .kernels import build_kernels, families
from .metrics import summarize_groups, three_way_split
from .transfer import transfer_efficiency

MODES: tuple[str, ...] = ("analytical", "calibrated", "residual", "transfer")
#: the pooled "family" of every row of a device
ALL = "all"
SPLITS: dict[str, str] = {
    "shapes": "test split (20% of each device's shapes by hash, never looked at by a design choice; "
              "fitted on 60%, structure chosen on a 20% validation split)",
    "validation": "validation split (the former held-out 20% of shapes, on which structural terms are chosen)",
    "framework": "second source (the same devices' kernels under another framework; nothing fitted on them)",
    "device": "held-out device (efficiency calibrated on another device, spec sheet of this one)",
}


@dataclass(frozen=True)
class Score:
    split: str
    device: str
    family: str
    mode: str
    rows: int
    mdape: float
    p90_ape: float
    median_signed_bias: float


@dataclass(frozen=True)
class Target:
    """A published accuracy target: MdAPE <= ``max_mdape`` for these cells."""

    split: str
    mode: str
    families: tuple[str, ...]
    max_mdape: float
    devices: tuple[str, ...] | None = None  # None: every device with data
    category: str | None = None  # only devices of this category ("cpu")

    @property
    def label(self) -> str:
        where = ", ".join(self.devices) if self.devices else (f"every {self.category} device" if self.category
                                                              else "every device")
        return f"{self.split} / {self.mode}: {'+'.join(self.families)} MdAPE <= {100 * self.max_mdape:.0f}% ({where})"


#: the targets of the fidelity issue (MLA counts as attention)
TARGETS: tuple[Target, ...] = (
    Target("shapes", "calibrated", ("gemm", "attention", "mla"), 0.10, category="gpu"),
    Target("shapes", "calibrated", ("moe", "collective"), 0.15, category="gpu"),
    Target("device", "transfer", ("gemm", "attention", "mla"), 0.20, devices=("h200", "b200")),
    Target("shapes", "calibrated", (ALL,), 0.15, category="cpu"),
)


@dataclass(frozen=True)
class Check:
    target: Target
    device: str
    family: str
    mdape: float

    @property
    def passed(self) -> bool:
        return bool(self.mdape <= self.target.max_mdape)


@dataclass
class FidelityReport:
    header: dict[str, str]
    scores: list[Score] = field(default_factory=list)
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    unpredicted: dict[str, int] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    given_label: str = "analytical"
    predictions: pa.Table | None = None

    def score(self, split: str, device: str, family: str, mode: str) -> Score | None:
        for s in self.scores:
            if (s.split, s.device, s.family, s.mode) == (split, device, family, mode):
                return s
        return None

    def checks(self, targets: Sequence[Target] = TARGETS) -> list[Check]:
        out = []
        for t in targets:
            for s in self.scores:
                if s.split != t.split or s.mode != t.mode or s.family not in t.families or s.rows == 0:
                    continue
                if t.devices is not None and s.device not in t.devices:
                    continue
                if t.category is not None and self.categories.get(s.device) != t.category:
                    continue
                out.append(Check(t, s.device, s.family, s.mdape))
        return out

    def to_dict(self) -> dict:
        def clean(v):
            return None if isinstance(v, float) and math.isnan(v) else v

        return {
            "header": self.header,
            "modes": {"analytical": self.given_label},
            "scores": [{k: clean(v) for k, v in asdict(s).items()} for s in self.scores],
            "targets": [{"target": c.target.label, "device": c.device, "family": c.family, "mdape": c.mdape,
                         "passed": c.passed} for c in self.checks()],
            "calibrations": {d: {"efficiency": c.efficiency.model_dump(mode="json"),
                                 "stages": [asdict(s) for s in c.stages]} for d, c in self.calibrations.items()},
            "skipped": self.skipped,
            "unpredicted_rows": self.unpredicted,
        }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _scores(split: str, device: str, table: pa.Table, fam: np.ndarray, pred: np.ndarray, mask: np.ndarray,
            mode: str) -> list[Score]:
    ok = mask & np.isfinite(pred)
    if not ok.any():
        return []
    sub = table.filter(pa.array(ok)).select(["latency_s"]).append_column("family", pa.array(fam[ok].astype(str)))
    out = [Score(split, device, r["family"], mode, r["rows"], r["mdape"], r["p90_ape"], r["median_signed_bias"])
           for r in summarize_groups(sub, pred[ok], by=("family",))]
    pooled = summarize_groups(sub, pred[ok], by=())[0]
    out.append(Score(split, device, ALL, mode, pooled["rows"], pooled["mdape"], pooled["p90_ape"],
                     pooled["median_signed_bias"]))
    return out


def evaluate(
    table: pa.Table,
    hardware: Mapping[str, Device],
    *,
    calibrate_devices: bool = True,
    residual: bool = False,
    source_device: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_fit_rows: int = 20_000,
    keep_predictions: bool = False,
    header: Mapping[str, str] | None = None,
    given_label: str = "analytical",
    measurement_name: str = "measurements",
    progress=None,
    workers: int | None = None,
    validation_fraction: float = 0.2,
    second: pa.Table | None = None,
    second_name: str | None = None,
) -> FidelityReport:
    """Score the cost model on ``table`` for every device in ``hardware`` (measured name -> Device).

    ``source_device``: a key of ``hardware`` whose calibration is carried to every other
    device (the held-out-device split); needs ``calibrate_devices``. ``workers``: processes
    that calibrate devices side by side (None: one per core, at most one per device); the
    report is the same for any number.
    """
    report = FidelityReport(header=dict(header or {}), given_label=given_label)
    report.header.setdefault("date", _dt.date.today().isoformat())
    report.header.setdefault("infersim", package_version("infersim") or "unknown")
    report.header["split"] = (f"scores on the test split: {int(round(100 * test_fraction))}% of shapes never looked "
                              f"at; fitted on {int(round(100 * (1 - test_fraction - validation_fraction)))}%, "
                              f"structure chosen on a {int(round(100 * validation_fraction))}% validation split "
                              f"(hash of the shape, seed {seed})")
    if second is not None and second_name:
        report.header["second source"] = second_name
    second_names = (np.asarray(second.column("device").to_pylist(), dtype=object) if second is not None
                    else np.zeros(0, dtype=object))
    names = np.asarray(table.column("device").to_pylist(), dtype=object)
    order = sorted(hardware, key=lambda d: (d != source_device, d))
    fitted = _fit_devices(table, names, hardware, order, calibrate_devices=calibrate_devices, residual=residual,
                          test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed,
                          max_fit_rows=max_fit_rows, measurement_name=measurement_name, workers=workers,
                          progress=progress)
    parts = []
    source_cal = None
    for dev_name in order:
        device = hardware[dev_name]
        report.categories[dev_name] = device.category
        rows = table.filter(pa.array(names == dev_name))
        if rows.num_rows == 0:
            report.skipped[dev_name] = "no measurements"
            continue
        if progress:
            progress(f"{dev_name}: {rows.num_rows} rows")
        kernels = build_kernels(rows)
        fam = families(rows)
        _, validation, test = three_way_split(rows, test_fraction, validation_fraction, seed)
        pred = {"analytical": kernels.predict(device)}
        report.unpredicted[dev_name] = int(np.sum(~np.isfinite(pred["analytical"])))
        if dev_name in fitted:
            cal, res = fitted[dev_name]
            report.calibrations[dev_name] = cal
            pred["calibrated"] = kernels.predict(cal.device)
            if dev_name == source_device:
                source_cal = cal
            if res is not None:
                pred["residual"] = res.apply(rows, kernels, pred["calibrated"])
        if source_cal is not None and dev_name != source_device:
            eff = transfer_efficiency(source_cal.efficiency, hardware[source_device], device)
            pred["transfer"] = kernels.predict(with_efficiency(device, eff))
        for mode, p in pred.items():
            split = "device" if mode == "transfer" else "shapes"
            report.scores.extend(_scores(split, dev_name, rows, fam, p, test, mode))
            if mode != "transfer":
                report.scores.extend(_scores("validation", dev_name, rows, fam, p, validation, mode))
        if second is not None and (second_names == dev_name).any():
            report.scores.extend(_second_source_scores(second.filter(pa.array(second_names == dev_name)), dev_name,
                                                       device, fitted.get(dev_name)))
        if keep_predictions:
            out = rows.append_column("family", pa.array(fam.astype(str)))
            out = out.append_column("split", pa.array(np.where(test, "test", np.where(validation, "validation", "fit"))))
            for mode in MODES:
                if mode in pred:
                    out = out.append_column(f"pred_{mode}_s", pa.array(pred[mode]))
                else:
                    out = out.append_column(f"pred_{mode}_s", pa.nulls(rows.num_rows, pa.float64()))
            parts.append(out)
    if keep_predictions and parts:
        report.predictions = pa.concat_tables(parts)
    if not report.scores:
        raise InfersimError("nothing to evaluate: no measured rows for the selected devices and ops")
    return report


def _second_source_scores(rows: pa.Table, dev_name: str, device: Device, fitted) -> list[Score]:
    """Scores of every row of the second source: the device as given, and calibrated on the first."""
    kernels = build_kernels(rows)
    fam = families(rows)
    every = np.ones(rows.num_rows, dtype=bool)
    out = _scores("framework", dev_name, rows, fam, kernels.predict(device), every, "analytical")
    if fitted is not None:
        out += _scores("framework", dev_name, rows, fam, kernels.predict(fitted[0].device), every, "calibrated")
    return out


def _fit_one(rows: pa.Table, device: Device, train: np.ndarray, residual: bool, seed: int, max_fit_rows: int,
             source: str, validation: np.ndarray | None = None):
    """(calibration, learned residual or None) of one device, fitted on its ``train`` rows, its
    structural choices made on its ``validation`` rows."""
    train_rows = rows.filter(pa.array(train))
    val_rows = rows.filter(pa.array(validation)) if validation is not None and validation.any() else None
    cal = calibrate(train_rows, device, max_rows=max_fit_rows, source=source, validation=val_rows)
    res = None
    if residual:
        from .residual import fit_residual

        kernels = build_kernels(train_rows)
        res = fit_residual(train_rows, kernels, kernels.predict(cal.device), seed=seed)
    return cal, res


def _fit_devices(table: pa.Table, names: np.ndarray, hardware: Mapping[str, Device], order: Sequence[str], *,
                 calibrate_devices: bool, residual: bool, test_fraction: float, validation_fraction: float, seed: int,
                 max_fit_rows: int, measurement_name: str, workers: int | None, progress) -> dict:
    """Calibrate (and fit the residual of) every device with training rows, in ``workers``
    processes; device name -> (calibration, residual or None)."""
    if not calibrate_devices:
        return {}
    jobs = {}
    for dev_name in order:
        rows = table.filter(pa.array(names == dev_name))
        if rows.num_rows == 0:
            continue
        train, validation, _ = three_way_split(rows, test_fraction, validation_fraction, seed)
        if train.any():
            jobs[dev_name] = (rows, hardware[dev_name], train, residual, seed, max_fit_rows,
                              f"{measurement_name} ({dev_name}, fit split)", validation)
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if progress and jobs:
        progress(f"calibrating {len(jobs)} device(s) in {max(workers, 1)} process(es)", 0, len(jobs))
    fitted = {}
    if workers <= 1:
        for name, job in jobs.items():
            fitted[name] = _fit_one(*job)
            if progress:
                progress(f"calibrated {name}", len(fitted), len(jobs))
        return fitted
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        futures = {pool.submit(_fit_one, *job): name for name, job in jobs.items()}
        for future in as_completed(futures):
            fitted[futures[future]] = future.result()
            if progress:
                progress(f"calibrated {futures[future]}", len(fitted), len(jobs))
    return {name: fitted[name] for name in jobs}


def select_rows(table: pa.Table, devices: Sequence[str] | None = None, ops: Sequence[str] | None = None) -> pa.Table:
    """Rows of the given devices and ops (None: all)."""
    if devices:
        table = table.filter(pc.is_in(table.column("device"), pa.array(list(devices))))
    if ops:
        table = table.filter(pc.is_in(table.column("op"), pa.array(list(ops))))
    return table
