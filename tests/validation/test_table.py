"""The bundled validation table and the errors a bad table gives (file, row and field in one line)."""

import csv
import io

import pytest

from infersim.errors import ConfigError
from infersim.validation import default_table_path, load_datasets, load_table, select
from infersim.validation.table import ENGINES


def _bundled_rows() -> list[dict]:
    return list(csv.DictReader(io.StringIO(default_table_path().read_text())))


def _write(tmp_path, rows: list[dict]):
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_bundled_table_loads_with_a_source_and_config_source_on_every_row():
    rows = load_table()
    assert len(rows) >= 20
    assert len({r.id for r in rows}) == len(rows)
    for r in rows:
        assert r.source.startswith("github:") and "@" in r.source
        if r.source.startswith("github:mlcommons/inference_results_v"):
            assert "mlperf_log_summary.txt" in r.source and "closed/" in r.config_source
        assert r.engine in ENGINES and r.runtime.split("-")[0] == r.engine
        assert (r.samples is not None) == (r.scenario == "Offline")  # the measured run's request count
        # the measured output tokens per sample is the ratio of the two logged throughputs
        assert r.output_mean_tokens == pytest.approx(r.measured_output_tokens_per_s / r.measured_samples_per_s,
                                                     abs=0.06)
    scenarios = {(r.device, r.model, r.scenario) for r in rows}
    assert {"Offline", "Server"} == {s for _, _, s in scenarios}
    assert {"h100-sxm", "h200", "b200", "gb200", "mi300x", "mi325x"} <= {d for d, _, _ in scenarios}
    assert {"llama-2-70b", "mixtral-8x7b", "llama-3.1-405b"} <= {m for _, m, _ in scenarios}
    assert {"trtllm", "vllm", "sglang"} == {r.engine for r in rows}


def test_select_filters_case_insensitively():
    rows = load_table()
    chosen = select(rows, device=["H100-SXM"], scenario=["Offline"])
    assert chosen and all(r.device == "h100-sxm" and r.scenario == "Offline" for r in chosen)
    assert select(rows, model=["no-such-model"]) == []


@pytest.mark.parametrize("field, value, expected", [
    ("model", "llama-9-999b", "unknown model 'llama-9-999b'"),
    ("device", "h900", "unknown hardware 'h900'"),
    ("dataset", "sharegpt", "unknown dataset 'sharegpt'"),
    ("tp", "two", "valid integer"),
    ("source", "", "required field is missing or empty"),
    ("engine", "tgi", "'trtllm', 'vllm' or 'sglang'"),
    ("runtime", "tgi", "unknown runtime 'tgi'"),
    ("engine_kernels", "trtllm-0.9", "unknown kernel set 'trtllm-0.9'"),
    ("kv_dtype", "fp7", "unknown dtype 'fp7'"),
    ("replicas", "3", "must equal device_count"),
])
def test_a_bad_row_names_the_file_the_row_and_the_field(tmp_path, field, value, expected):
    rows = _bundled_rows()[:3]
    rows[1][field] = value
    path = _write(tmp_path, rows)
    with pytest.raises(ConfigError) as err:
        load_table(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and f"row 3 ({rows[1]['id']})" in msg
    if field != "replicas":  # a cross-field rule is reported on the row as a whole
        assert f"'{field}'" in msg
    assert expected in msg


def test_server_rows_need_their_latency_constraints(tmp_path):
    rows = [r for r in _bundled_rows() if r["scenario"] == "Server"][:1]
    rows[0]["tpot_p99_ms"] = ""
    with pytest.raises(ConfigError, match="needs both ttft_p99_ms and tpot_p99_ms"):
        load_table(_write(tmp_path, rows))


def test_a_sample_count_belongs_to_offline_rows_only(tmp_path):
    rows = [r for r in _bundled_rows() if r["scenario"] == "Server"][:1]
    rows[0]["samples"] = "24576"
    with pytest.raises(ConfigError, match="a Server row leaves it empty"):
        load_table(_write(tmp_path, rows))
    offline = [r for r in _bundled_rows() if r["scenario"] == "Offline"][:1]
    offline[0]["samples"] = "0"
    with pytest.raises(ConfigError, match="field 'samples'"):
        load_table(_write(tmp_path, offline))


def test_a_prefill_threshold_needs_chunked_prefill(tmp_path):
    rows = [r for r in _bundled_rows() if r["scheduler"] == "inflight"][:1]
    rows[0]["long_prefill_token_threshold"] = "256"
    with pytest.raises(ConfigError, match="needs scheduler chunked"):
        load_table(_write(tmp_path, rows))
    bundled = {r.id: r for r in load_table()}
    assert bundled["v5.1-redhat-l40sx1-llama3.1-8b-offline"].long_prefill_token_threshold == 256


def test_engine_kernels_belong_to_the_rows_engine(tmp_path):
    rows = [r for r in _bundled_rows() if r["engine"] == "trtllm"][:1]
    rows[0]["engine_kernels"] = "vllm"
    with pytest.raises(ConfigError, match=r"engine_kernels 'vllm' are not kernels of this row's engine \(trtllm\)"):
        load_table(_write(tmp_path, rows))
    # optional: a table without the column loads, every row without a release
    plain = [{k: v for k, v in r.items() if k != "engine_kernels"} for r in _bundled_rows()[:2]]
    assert [r.engine_kernels for r in load_table(_write(tmp_path, plain))] == [None, None]
    bundled = load_table()
    assert {r.id for r in bundled if r.engine_kernels == "trtllm-1.0"} == {
        r.id for r in bundled if r.round == "v5.1" and r.submitter in ("NVIDIA", "HPE") and r.engine == "trtllm"}


def test_a_missing_column_and_a_duplicate_id_are_errors(tmp_path):
    rows = _bundled_rows()[:2]
    with pytest.raises(ConfigError, match="field 'config_source': column missing"):
        load_table(_write(tmp_path, [{k: v for k, v in r.items() if k != "config_source"} for r in rows]))
    rows[1]["id"] = rows[0]["id"]
    with pytest.raises(ConfigError, match=r"row 3 .*field 'id': duplicate id"):
        load_table(_write(tmp_path, rows))


def test_datasets_state_the_basis_of_every_length_distribution():
    for name, spec in load_datasets().items():
        assert spec.samples > 0
        assert len(spec.input_basis) > 20 and len(spec.output_basis) > 20, name


def test_a_bad_datasets_file_names_the_dataset_and_field(tmp_path):
    path = tmp_path / "datasets.yaml"
    path.write_text("orca:\n  description: x x x\n  samples: 10\n  input_tokens: {dist: fixed, value: 10}\n"
                    "  input_basis: a basis text\n  output_tokens: {dist: lognormal, sigma: 0.5, max: 0}\n"
                    "  output_basis: a basis text\n")
    with pytest.raises(ConfigError, match=r"field 'orca\.output_tokens\.max'"):
        load_datasets(path)


#: Server latency limits (p99 TTFT ms, p99 TPOT ms) of loadgen's mlperf.conf, copied into every v5.1
#: submission's measurements/<system>/<benchmark>/Server/mlperf.conf (llama2-70b.Server.ttft_latency = 2000 ...)
_LOADGEN_SERVER_LIMITS_MS = {"llama2-70b-99": (2000, 200), "mixtral-8x7b": (2000, 200),
                             "llama3.1-405b": (6000, 175), "llama3.1-8b": (2000, 100)}


def test_mlperf_rows_cite_their_own_result_file_and_loadgen_latency_limits():
    mlperf = [r for r in load_table() if r.source.startswith("github:mlcommons/inference_results_v")]
    assert len(mlperf) >= 40
    for r in mlperf:
        repo, path = r.source.split(":", 2)[1:]
        assert repo.split("@")[0] == f"mlcommons/inference_results_{r.round}", r.id
        assert path == (f"closed/{r.submitter}/results/{r.system}/{r.benchmark}/{r.scenario}"
                        "/performance/run_1/mlperf_log_summary.txt"), r.id
        assert r.id.startswith(f"{r.round}-{r.submitter.lower()}-") and r.id.endswith(f"-{r.scenario.lower()}"), r.id
        if r.scenario == "Server":
            assert (r.ttft_p99_ms, r.tpot_p99_ms) == _LOADGEN_SERVER_LIMITS_MS[r.benchmark], r.id


def test_vllm_v1_rows_chunk_prefills_in_single_steps():
    # vLLM's V1 engine always chunks prefills and has no multi-step scheduling
    # (EngineArgs._set_default_args_v1 and the V1 oracle's --num-scheduler-steps fallback, vllm/engine/arg_utils.py)
    v1 = [r for r in load_table() if r.runtime == "vllm"]
    assert {r.device for r in v1} >= {"h100-sxm", "l40s"}
    assert all(r.engine == "vllm" and r.scheduler == "chunked" and r.scheduler_steps == 1 for r in v1)
