"""The shipped device profiles: fitted, checked and written (``infersim calibrate --all --write-profiles``).

For every catalog device with measured kernels in aiconfigurator-core's tables the
efficiency section is calibrated on all of its rows (:func:`~infersim.fidelity.calibrate.calibrate`,
starting from the spec-sheet model, so the result does not depend on an earlier profile)
and written with its provenance: the data package and version, the rows used, the date,
the fit MdAPE per stage, and a check slice (the profile's MdAPE per op family on the
``CHECK_ROWS`` rows of each family with the smallest row hash) that the tests recompute.
Every other catalog device gets the profile of its nearest measured device carried over
by :func:`~infersim.fidelity.transfer.transfer_efficiency` (nearest: the smallest
``|log(bf16 peak ratio)| + |log(memory bandwidth ratio)|`` among the measured devices),
and says so.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import InfersimError
from ..hardware.catalog import builtin_names, get_device, load_profile, profile_path
from ..hardware.device import Device
from ..hardware.efficiency import EfficiencySpec
from ..hardware.profile import REGENERATE, CheckSlice, DeviceProfile, Provenance
from .calibrate import calibrate, with_efficiency
from .devicefile import efficiency_dump, yaml_text
from .kernels import build_kernels, families
from .measurements import hash_rows
from .metrics import SPLIT_COLUMNS
from .stages import CALIBRATION_STAGES

#: the measurement package the shipped profiles are fitted to
DATA = "aiconfigurator-core"
#: rows per op family in a profile's check slice (a few seconds per device in the tests)
CHECK_ROWS = 200
CHECK_SEED = 17
#: rows per calibration stage (the ``infersim calibrate`` default)
MAX_ROWS = 20_000


def spec_distance(a: Device, b: Device) -> float:
    """How far apart two spec sheets are: ``|log(bf16 peak ratio)| + |log(bandwidth ratio)|``."""
    return (abs(math.log(a.peak_flops("bf16") / b.peak_flops("bf16")))
            + abs(math.log(a.memory_bandwidth_bytes_per_s / b.memory_bandwidth_bytes_per_s)))


def nearest_measured(target: Device, measured: Sequence[Device]) -> Device:
    """The measured device whose spec sheet is closest to ``target``'s (ties: the first by name)."""
    if not measured:
        raise InfersimError("no measured device to transfer a profile from")
    return min(sorted(measured, key=lambda d: d.name), key=lambda d: spec_distance(target, d))


def check_slice(table: pa.Table, device: Device, rows_per_family: int = CHECK_ROWS,
                seed: int = CHECK_SEED) -> CheckSlice:
    """``device``'s MdAPE per op family on the ``rows_per_family`` rows of each family of
    ``table`` with the smallest row hash (rows the cost model cannot predict left out)."""
    rows = slice_rows(table, rows_per_family, seed)
    sub = table.take(pa.array(rows))
    pred = build_kernels(sub).predict(device)
    meas = np.asarray(sub.column("latency_s").to_numpy(), dtype=np.float64)
    fam = families(sub).astype(str)
    out = {}
    for f in sorted(set(fam)):
        ok = (fam == f) & np.isfinite(pred)
        if ok.any():
            out[f] = round(float(np.median(np.abs(pred[ok] / meas[ok] - 1.0))), 5)
    return CheckSlice(rows_per_family=rows_per_family, seed=seed, mdape=out)


def slice_rows(table: pa.Table, rows_per_family: int, seed: int) -> np.ndarray:
    """Row indices of the check slice: per family, the rows with the smallest hash, in row order."""
    h = hash_rows(table, [c for c in SPLIT_COLUMNS if c in table.column_names], seed=seed)
    fam = families(table).astype(str)
    keep = []
    for f in sorted(set(fam)):
        idx = np.flatnonzero(fam == f)
        keep.append(idx[np.argsort(h[idx], kind="stable")[:rows_per_family]])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def dtypes_kept_from_default(table: pa.Table, default: EfficiencySpec, stages: Sequence[str]) -> dict[str, list[str]]:
    """Per fitted stage (``stages``), the dtypes the default efficiency ``default`` has per-dtype
    values for (any ``*_by_dtype`` field of the stage's sections) that the stage fits no terms for on
    ``table`` (:meth:`~infersim.fidelity.stages.CalibrationStage.fitted_dtypes` of its ops' rows): an
    engine profile starts from the default profile, so those values are not the engine's
    (SGLang's MoE tables hold block-FP8 rows only, for instance)."""
    ops = np.asarray(table.column("op").to_pylist(), dtype=object)
    out = {}
    for name in stages:
        stage = CALIBRATION_STAGES[name]
        rows = np.flatnonzero(np.isin(ops, stage.ops))
        measured = set(stage.fitted_dtypes(build_kernels(table.take(pa.array(rows)))))
        known = set()
        for section in stage.sections:
            for key, value in getattr(default, section).model_dump().items():
                if key.endswith("_by_dtype") and isinstance(value, dict):
                    known |= set(value)
        if known - measured:
            out[name] = sorted(known - measured)
    return out


def calibrated_profile(table: pa.Table, base: Device, version: str, *, max_rows: int = MAX_ROWS,
                       date: str | None = None, framework: str | None = None, data: str = DATA) -> DeviceProfile:
    """Calibrate ``base`` on ``table`` (its rows) and wrap it with provenance (``data`` ``version``: the
    measurement package). ``framework``: None for a default profile (``base``: the spec-sheet model),
    else the kernel set (:mod:`~infersim.fidelity.kernel_sets`) whose tables ``table`` holds (``base``:
    the device's default profile, whose fitted stages without rows here are kept and listed in
    ``kept_from_default``)."""
    kernels = f" {framework} kernels" if framework else ""
    cal = calibrate(table, base, max_rows=max_rows,
                    source=f"{data} {version}{kernels} ({base.name}, {table.num_rows} rows)")
    fitted = {s.stage: round(s.train_mdape, 5) for s in cal.stages}
    kept = sorted(set(load_profile(base.name).provenance.fit_mdape) - set(fitted)) if framework else []
    kept_dtypes = dtypes_kept_from_default(table, base.efficiency, sorted(fitted)) if framework else {}
    check = check_slice(table, with_efficiency(base, cal.efficiency))
    prov = Provenance(basis="calibrated", data=data, version=version, rows=cal.rows, rows_measured=table.num_rows,
                      date=date or _dt.date.today().isoformat(), max_rows=max_rows, fit_mdape=fitted, check=check,
                      framework=framework, kept_from_default=kept or None,
                      dtypes_kept_from_default=kept_dtypes or None, command=regenerate_command(framework))
    return DeviceProfile(device=base.name, provenance=prov, efficiency=cal.efficiency)


def transferred_profile(source: DeviceProfile, source_device: Device, target: Device) -> DeviceProfile:
    """``source``'s efficiency carried to ``target`` (spec sheet only) by :func:`transfer_efficiency`,
    its GEMM fractions rescaled to a published measurement of ``target`` where one is recorded
    (:func:`scale_to_measured_gemm`)."""
    from .transfer import scale_to_measured_gemm, transfer_efficiency

    eff = transfer_efficiency(source.efficiency, with_efficiency(source_device, source.efficiency), target)
    eff, scaled_by = scale_to_measured_gemm(eff, target)
    prov = source.provenance.model_copy(update={"basis": "transferred", "transferred_from": source.device,
                                                "scaled_by": scaled_by, "check": None})
    return DeviceProfile(device=target.name, provenance=prov, efficiency=eff)


def profile_text(profile: DeviceProfile) -> str:
    """The YAML of a profile (the efficiency section through the device-file serializer)."""
    p = profile.provenance
    head = (f"{profile.device}: shipped efficiency profile ({profile.basis}).\n"
            f"Written by `{p.command}`; do not edit by hand. The spec sheet is "
            f"{'../' * (1 + bool(p.framework))}{profile.device}.yaml.")
    data = {"device": profile.device,
            "provenance": p.model_dump(mode="json", exclude_none=True),
            "efficiency": efficiency_dump(profile.efficiency)}
    return yaml_text(data, head)


def regenerate_command(framework: str | None = None) -> str:
    """The command that writes the default profiles, or those fitted on ``framework``'s kernels."""
    return REGENERATE + (f" --framework {framework}" if framework else "")


def write_profile(profile: DeviceProfile, directory: str | Path | None = None) -> Path:
    """Write ``profile`` (default: into the package's profile folder for its framework) and check it
    loads back the same."""
    from ..hardware.catalog import parse_profile_yaml

    path = _path(profile.device, directory, profile.provenance.framework)
    text = profile_text(profile)
    if parse_profile_yaml(text, path) != profile:  # pragma: no cover - a serialization bug, not user input
        raise AssertionError("profile YAML does not round-trip")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def measured_devices(systems: Sequence[str]) -> list[str]:
    """Catalog devices among aiconfigurator-core's ``systems`` (infersim names)."""
    names = set(builtin_names())
    return [s for s in systems if s in names]


def _fit_one(name: str, version: str, max_rows: int, directory: str | Path | None,
             framework: str | None = None) -> DeviceProfile | None:
    """Calibrate catalog device ``name`` on all of its aiconfigurator-core rows (with ``framework``: the
    tables of that kernel set, :mod:`~infersim.fidelity.kernel_sets`, and the collective libraries' only)
    and write its profile (None where the package has no rows for it, or no kernel table of the set)."""
    from .kernel_sets import kernel_set, load_kernel_set
    from .aic_tables import load_aiconfigurator

    if framework is None:
        table, data = load_aiconfigurator(devices=[name]), DATA
    else:
        kset = kernel_set(framework)
        table, data = load_kernel_set(framework, [name]), kset.data
    if table.num_rows == 0 or (framework and not _has_framework_rows(table, kset.framework)):
        return None
    # an engine profile starts from the default profile: a stage without rows of this engine (vLLM has
    # no MLA tables) keeps the default profile's fit instead of the spec sheet's generic curves
    base = get_device(name, efficiency="spec" if framework is None else "calibrated")
    profile = calibrated_profile(table, base, version, max_rows=max_rows, framework=framework, data=data)
    write_profile(profile, directory)
    return profile


def _has_framework_rows(table: pa.Table, framework: str) -> bool:
    """Whether ``table`` holds kernel rows of ``framework`` (not only the shared collective libraries')."""
    import pyarrow.compute as pc

    return bool(pc.any(pc.equal(table.column("framework"), framework)).as_py())


def write_all_profiles(measured: Sequence[str], version: str, *, directory: str | Path | None = None,
                       max_rows: int = MAX_ROWS, workers: int = 1, framework: str | None = None,
                       progress: Callable[[str], None] = lambda _m: None) -> list[tuple[str, str, Path]]:
    """Calibrate every ``measured`` device on its aiconfigurator-core rows (one without rows counts
    as unmeasured; ``workers`` processes side by side, same results for any number), write each
    profile as soon as it is fitted, then transfer to every other catalog device; returns
    (device, basis, path) per file.

    ``framework`` (a kernel set of ``ENGINE_KERNELS``): fit on that set's kernel tables only and
    write its profiles (``profiles/<framework>/``); devices it did not measure get none (a transfer
    would stand for kernels nobody measured)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    profiles: dict[str, DeviceProfile] = {}
    missing = f"no {framework} kernel tables; no profile" if framework else "no measured rows; will be transferred"
    progress(f"calibrating {', '.join(measured)} ({workers} process{'es' if workers > 1 else ''})")
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_fit_one, n, version, max_rows, directory, framework): n for n in measured}
            for future in as_completed(futures):
                name, profile = futures[future], future.result()
                progress(f"{name}: " + (profile.basis if profile else missing))
                if profile is not None:
                    profiles[name] = profile
    else:
        for name in measured:
            profile = _fit_one(name, version, max_rows, directory, framework)
            progress(f"{name}: " + (profile.basis if profile else missing))
            if profile is not None:
                profiles[name] = profile
    if not profiles:
        raise InfersimError(f"{DATA if framework is None else framework} {version}: no measured rows for any "
                            "catalog device"
                            + (f" under {framework}" if framework else ""))
    out = [(n, p.basis, _path(n, directory, framework)) for n, p in profiles.items()]
    if framework:
        return sorted(out)
    spec_of = {n: get_device(n, efficiency="spec") for n in builtin_names()}
    calibrated = [spec_of[m] for m in sorted(profiles)]
    for name in builtin_names():
        if name in profiles:
            continue
        src = nearest_measured(spec_of[name], calibrated)
        profile = transferred_profile(profiles[src.name], src, spec_of[name])
        out.append((name, profile.basis, write_profile(profile, directory)))
    return sorted(out)


def _path(name: str, directory: str | Path | None, framework: str | None = None) -> Path:
    return Path(directory) / f"{name}.yaml" if directory else Path(str(profile_path(name, framework)))
