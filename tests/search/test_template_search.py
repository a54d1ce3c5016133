"""Accelerator-template fields searched as study parameters (static evaluator)."""

import json
from pathlib import Path

import pytest
import yaml

from infersim.errors import ConfigError
from infersim.hardware.template import derive, parse_template
from infersim.hardware.template.knobs import apply_knobs
from infersim.search import InlineBackend, open_store, run_study
from infersim.search.study import study_from_dict

GA100 = Path(__file__).resolve().parents[2] / "examples" / "accelerators" / "ga100.yaml"


def _study(**space):
    return study_from_dict({
        "name": "chips", "workload": "chat",
        "space": {"model": "llama-3.1-8b", "device": str(GA100), "max_batch": 16, **space},
        "objectives": [{"max": "output_tokens_per_s_per_chip_usd"}], "optimizer": "grid"})


def _rows(db):
    with open_store(db) as store:
        return store.con.execute("SELECT config, status, metrics, error FROM evaluations ORDER BY trial").fetchall()


def test_chip_metrics_are_the_derived_designs(db):
    with open_store(db, write=True) as store:
        run_study(_study(**{"chip.cores": [64, 128], "chip.memory_stacks": [4, 6]}), store, InlineBackend())
    stored = _rows(db)
    assert len(stored) == 4
    base = yaml.safe_load(GA100.read_text())["template"]
    for config, status, metrics, _ in stored:
        cfg, met = json.loads(config), json.loads(metrics)
        assert status == "ok"
        knobs = {k: v for k, v in cfg.items() if k.startswith("chip.")}
        _, report = derive(parse_template({"template": apply_knobs(base, knobs)}, "t"))
        assert met["chip_area_mm2"] == pytest.approx(report.die_area_mm2)
        assert met["chip_usd"] == pytest.approx(report.total_usd)
        assert met["output_tokens_per_s_per_chip_usd"] == pytest.approx(
            met["output_tokens_per_s_per_device"] / report.total_usd)
    # all cores enabled when the knob sets the count: 128 cores -> 128/108 of the binned GA100's peak area share
    areas = {json.loads(c)["chip.cores"]: json.loads(m)["chip_area_mm2"] for c, _, m, _ in stored}
    assert areas[128] > areas[64]


def test_over_budget_designs_are_rejected_with_the_reason(db):
    with open_store(db, write=True) as store:
        run_study(_study(**{"chip.cores": [32, 256], "chip.max_area_mm2": 700}), store, InlineBackend())
    by_cores = {json.loads(c)["chip.cores"]: (s, e) for c, s, _, e in _rows(db)}
    assert by_cores[32][0] == "ok"
    status, error = by_cores[256]
    assert status == "rejected" and "die area" in error and "700 mm2" in error


def test_chip_knobs_on_a_catalog_device_are_refused(db):
    study = study_from_dict({"name": "bad", "workload": "chat",
                             "space": {"model": "llama-3.1-8b", "device": "h100-sxm", "chip.cores": [64]},
                             "objectives": [{"max": "output_tokens_per_s"}], "optimizer": "grid"})
    with open_store(db, write=True) as store:
        run_study(study, store, InlineBackend())
    (_, status, _, error), = _rows(db)
    assert status == "rejected" and "accelerator template" in error


def test_unknown_chip_knob_names_the_field():
    with pytest.raises(ConfigError, match=r"space\.chip\.bogus"):
        _study(**{"chip.bogus": [1]})
