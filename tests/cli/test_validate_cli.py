"""``infersim validate`` as a user runs it: one row end to end, filters, and bad tables."""

import csv
import io
import json

from click.testing import CliRunner

from infersim.cli.main import cli
from infersim.validation import default_table_path

ROW = "v4.1-dell-h100x4-llama2-offline"


def test_validate_one_row_as_json_names_runtime_and_device_basis():
    r = CliRunner().invoke(cli, ["validate", "--id", ROW, "--batches", "1", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["overall"]["rows"] == 1
    (row,) = data["rows"]
    assert row["id"] == ROW and row["scenario"] == "Offline"
    assert row["signed_error"] == (row["predicted_output_tokens_per_s"] - row["measured_output_tokens_per_s"]) \
        / row["measured_output_tokens_per_s"]
    assert data["overall"]["mdape"] == abs(row["signed_error"])
    assert row["runtime"] and row["device_basis"]
    assert set(data["groups"]) == {"split", "device", "model", "precision", "shape", "scenario", "engine"}
    # the row's half, and the same row kept by --split of that half and dropped by the other
    from infersim.validation.score import split_of

    assert row["split"] == split_of(ROW) and [g["split"] for g in data["groups"]["split"]] == [row["split"]]
    other = "dev" if row["split"] == "test" else "test"
    r = CliRunner().invoke(cli, ["validate", "--id", ROW, "--split", other, "--batches", "1"])
    assert r.exit_code == 2 and "no validation row matches" in r.output and "--split" in r.output


def test_validate_table_output_and_csv_file(tmp_path):
    out = tmp_path / "results.csv"
    r = CliRunner().invoke(cli, ["validate", "--id", ROW, "--batches", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.stdout.split())
    assert ROW in flat and "overall 1 rows: MdAPE" in flat and "device basis h100-sxm" in flat
    rows = list(csv.DictReader(out.open()))
    assert [x["id"] for x in rows] == [ROW]


def test_no_matching_row_and_a_bad_table_exit_2_with_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["validate", "--device", "tpu-v6e"])
    assert r.exit_code == 2 and "no validation row matches" in r.output
    rows = list(csv.DictReader(io.StringIO(default_table_path().read_text())))[:2]
    rows[0]["device"] = "h100-nvl"
    path = tmp_path / "mine.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = CliRunner().invoke(cli, ["validate", "--csv", str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    flat = " ".join(r.output.split())
    assert "mine.csv: row 2" in flat and "field 'device'" in flat and "unknown hardware 'h100-nvl'" in flat


def test_runtime_flag_replaces_the_rows_runtime_and_rejects_unknown_names():
    r = CliRunner().invoke(cli, ["validate", "--id", ROW, "--batches", "1", "--runtime", "none", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"][0]["runtime"] == "none"
    r = CliRunner().invoke(cli, ["validate", "--runtime", "tgi"])
    assert r.exit_code == 2 and "--runtime: unknown runtime 'tgi'" in r.output


def test_engine_kernels_flag_loads_the_rows_engine_profile():
    vllm_row = "vllm-0.6.0-a100x1-llama3.1-8b-offline"  # vLLM 0.6.0 on one A100: vLLM's kernels
    args = ["validate", "--id", vllm_row, "--id", ROW, "--batches", "1", "--json"]
    plain = {r["id"]: r for r in json.loads(CliRunner().invoke(cli, args).stdout)["rows"]}
    r = CliRunner().invoke(cli, args + ["--engine-kernels"])
    assert r.exit_code == 0, r.output
    engine = {row["id"]: row for row in json.loads(r.stdout)["rows"]}
    assert " vLLM kernels " in engine[vllm_row]["device_basis"]
    assert " vLLM kernels " not in plain[vllm_row]["device_basis"]
    assert engine[vllm_row]["predicted_output_tokens_per_s"] != plain[vllm_row]["predicted_output_tokens_per_s"]
    # a TensorRT-LLM row keeps the default profile (fitted on TensorRT-LLM's kernels): the same prediction
    assert {k: v for k, v in engine[ROW].items() if k != "wall_s"} == {
        k: v for k, v in plain[ROW].items() if k != "wall_s"}
