"""Contract of every registered calibration stage (:data:`infersim.fidelity.stages.CALIBRATION_STAGES`):
its ops and sections are known and its own, its parameters and candidates name fields of its own
sections with sane bounds, and running it on measured rows changes nothing outside its sections.

The rows are the L40S slice of aiconfigurator-core 0.12.0 in ``tests/data/golden/kernels.parquet``
(every op the stages fit, with bf16 and fp8 KV caches, MHA and grouped decode, 2-8 GPU collectives
over PCIe: every branch of the stages' parameter lists)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="the measured rows are parquet (pip install 'infersim[test]')")

import pyarrow.compute as pc  # noqa: E402

from infersim.fidelity.kernels import OP_FAMILY, build_kernels  # noqa: E402
from infersim.fidelity.measurement_files import load_measurements  # noqa: E402
from infersim.fidelity.stages import CALIBRATION_STAGES, CalibrationStage, StageContext  # noqa: E402
from infersim.hardware import get_device  # noqa: E402
from infersim.hardware.efficiency import FLAT_FIELDS, SECTIONS, EfficiencySpec  # noqa: E402
from tests.perf.golden_predictions import DATA  # noqa: E402

STAGES = list(CALIBRATION_STAGES.items())


def _section_of(name: str) -> str:
    """The section a parameter or update key (a flat name, ``name.key`` for one entry) sets."""
    return FLAT_FIELDS[name.partition(".")[0]][0]


@pytest.fixture(scope="module")
def l40s_rows():
    rows = load_measurements(DATA / "kernels.parquet")
    return rows.filter(pc.equal(rows.column("device"), "l40s"))


def _context(stage: CalibrationStage, rows, max_nfev: int = 3) -> StageContext:
    device = get_device("l40s", efficiency="spec")
    ops = np.asarray(rows.column("op").to_pylist())
    keep = np.isin(ops, stage.ops)
    kernels = build_kernels(rows).subset(keep)
    meas = np.asarray(rows.column("latency_s").to_numpy())[keep]
    return StageContext(device, kernels, meas, np.ones(int(keep.sum())), set(ops[keep]), True, True,
                        ("gpu", "single"), max_nfev)


def test_registry_keys_ops_and_sections():
    assert [name for name, _ in STAGES] == ["gemm", "attention", "mla", "moe", "collective"]  # the fit order
    seen: set[str] = set()
    for name, stage in STAGES:
        assert isinstance(stage, CalibrationStage) and stage.name == name
        assert stage.ops and set(stage.ops) <= set(OP_FAMILY), name
        assert not seen & set(stage.ops), f"{name} fits ops another stage fits"
        seen |= set(stage.ops)
        assert stage.sections and set(stage.sections) <= set(SECTIONS), name
    assert seen == set(OP_FAMILY)  # every measured op is fitted by exactly one stage
    # every section but none is fitted by some stage
    assert {s for _, st in STAGES for s in st.sections} == set(SECTIONS)


@pytest.mark.parametrize("name,stage", STAGES, ids=[n for n, _ in STAGES])
def test_parameters_and_candidates_stay_in_the_stage_sections(name, stage, l40s_rows):
    ctx = _context(stage, l40s_rows)
    eff = ctx.device.efficiency
    candidates, _ = stage.candidates(ctx, eff)
    assert candidates
    for label, update in candidates:
        assert label is None or isinstance(label, str)
        assert isinstance(update, dict)
        assert {_section_of(k) for k in update} <= set(stage.sections), (name, update)
        start = eff.model_copy(update=update)
        for blocks in (True, False):
            params = stage.params(ctx.kernels, ctx.ops, start, blocks=blocks, cache_bytes=ctx.device.sram_bytes)
            assert params, name
            names = [p.name for p in params]
            assert len(names) == len(set(names)), f"{name}: a parameter is fitted twice"
            assert {_section_of(n) for n in names} <= set(stage.sections), (name, names)
            # per-dtype terms only for the dtypes the stage says it fits (what an engine profile's
            # provenance lists as kept from the default profile rests on this)
            per_dtype = {n.rpartition(".")[2] for n in names if "_by_dtype." in n}
            assert per_dtype <= set(stage.fitted_dtypes(ctx.kernels)), (name, per_dtype)
            assert bool(per_dtype) == bool(stage.fitted_dtypes(ctx.kernels)), name
            for p in params:
                assert p.lower < p.upper and p.lower <= p.initial <= p.upper, p
                assert not p.log or p.lower > 0, p
        assert len(stage.params(ctx.kernels, ctx.ops, start, blocks=True, cache_bytes=ctx.device.sram_bytes)) >= \
            len(stage.params(ctx.kernels, ctx.ops, start, blocks=False, cache_bytes=0.0))


@pytest.mark.parametrize("name,stage", STAGES, ids=[n for n, _ in STAGES])
def test_running_a_stage_changes_only_its_sections(name, stage, l40s_rows):
    pytest.importorskip("scipy", reason="calibration needs scipy (pip install 'infersim[test]')")
    ctx = _context(stage, l40s_rows)
    before = ctx.device.efficiency
    fit = stage.run(ctx, before)
    assert isinstance(fit.efficiency, EfficiencySpec) and math.isfinite(fit.score) and fit.params
    # the fit improves on the uncalibrated model on the stage's own rows
    assert fit.score < ctx.score(before)
    changed = {section for section in SECTIONS if getattr(fit.efficiency, section) != getattr(before, section)}
    assert changed, name
    assert changed <= set(stage.sections), f"{name} changed {changed - set(stage.sections)}"
    # every fitted parameter reads back from the section it names
    for p in fit.params:
        flat, _, key = p.name.partition(".")
        value = getattr(fit.efficiency, flat)
        assert (value if not key else value.get(int(key) if key.isdigit() else key, None)) is not None, p.name
