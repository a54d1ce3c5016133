"""Every command states the basis of its devices' numbers, and --efficiency / `efficiency:` choose it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from infersim.cli.main import cli
from infersim.hardware import get_device
from infersim.hardware.catalog import load_profile

EXAMPLES = Path(__file__).parents[2] / "examples"
CASE = ["--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "8", "--batch", "1", "--input", "1024",
        "--output", "128"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _calibrated_basis(name: str) -> str:
    p = load_profile(name).provenance
    return f"calibrated on aiconfigurator-core {p.version} ({p.rows:,} rows, {p.date})"


def test_estimate_states_the_basis_and_the_spec_model_stays_available():
    default = run("estimate", *CASE, "--json")
    spec = run("estimate", *CASE, "--json", "--efficiency", "spec")
    assert default.exit_code == 0 and spec.exit_code == 0, default.output + spec.output
    d, s = json.loads(default.output), json.loads(spec.output)
    assert d["hardware_basis"] == _calibrated_basis("h100-sxm")
    assert s["hardware_basis"] == "spec sheet only"
    assert d["tpot_s"] != s["tpot_s"]  # the profile changes the kernels' times ...
    assert d["memory_per_device_bytes"] == s["memory_per_device_bytes"]  # ... not the memory
    table = run("estimate", *CASE)
    assert f"basis of h100-sxm: {_calibrated_basis('h100-sxm')}" in table.output
    # a transferred device says where from
    mi = run("estimate", "--model", "llama-3.1-8b", "--hardware", "mi300x", "--json")
    prov = load_profile("mi300x").provenance
    assert json.loads(mi.output)["hardware_basis"] == f"transferred from {prov.transferred_from}, scaled by {prov.scaled_by}"


def test_simulate_takes_the_scenario_field_and_the_flag_overrides_it(tmp_path):
    data = yaml.safe_load((EXAMPLES / "scenarios" / "default-chat.yaml").read_text())
    data["efficiency"] = "spec"
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(data))
    res = run("simulate", path, "-n", "30", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["hardware_basis"] == "spec sheet only"
    res = run("simulate", path, "-n", "30", "--json", "--efficiency", "calibrated")
    assert json.loads(res.output)["hardware_basis"] == _calibrated_basis(out["hardware"])


def test_unknown_efficiency_in_a_scenario_is_one_line_naming_the_field(tmp_path):
    data = yaml.safe_load((EXAMPLES / "scenarios" / "default-chat.yaml").read_text())
    data["efficiency"] = "tuned"
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(cli, ["simulate", str(path), "-n", "10"])
    assert res.exit_code == 2
    assert str(path) in res.output and "efficiency" in res.output
    assert len(res.output.strip().splitlines()) <= 2  # one logical line (a terminal may wrap it)


def test_search_records_the_basis_of_every_device(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "name": "basis", "workload": "chat", "evaluator": "static",
        "space": {"model": "llama-3.1-8b", "device": ["h100-sxm", "h100-sxm@spec", "mi300x"], "tp": [1]},
        "objectives": [{"min": "usd_per_million_output_tokens"}]}))
    db = tmp_path / "r.duckdb"
    res = run("search", study, "--db", db, "--no-progress")
    assert res.exit_code == 0, res.output
    assert f"basis of h100-sxm: {_calibrated_basis('h100-sxm')}" in res.output
    assert "basis of h100-sxm@spec: spec sheet only" in res.output
    csv_path = tmp_path / "r.csv"
    assert run("results", "export", "basis", "--db", db, "--csv", csv_path).exit_code == 0
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    by_device = {r["config.device"]: r["device_basis"] for r in rows}
    assert by_device == {"h100-sxm": _calibrated_basis("h100-sxm"), "h100-sxm@spec": "spec sheet only",
                         "mi300x": get_device("mi300x").basis}
