"""End-to-end validation of one published deployment, against bounds computed by hand."""

import numpy as np
import pytest

from infersim.serving.engine import simulate
from infersim.serving.metrics import summarize
from infersim.serving.sweep import with_rate
from infersim.serving.workload import build_workload
from infersim.validation import RunSize, load_datasets, load_table, predict_row, scenario_for
from infersim.serving.throughput import throughput_of
from infersim.validation.predict import clipped_lognormal_mean, lognormal_median_for_mean

SIZE = RunSize(batches=1.0, min_requests=600, max_offline_requests=3000)

# Llama 2 70B by hand (config.json: hidden 8192, 80 layers, 64 query / 8 KV heads of 128, FFN 28672):
# per layer q,o 8192^2 each, k,v 8192 x 1024 each, gated MLP 3 x 8192 x 28672
LINEAR_PARAMS = 80 * (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672)  # 68.45e9
H100_FP8_DENSE_FLOPS = 1978.9e12  # NVIDIA H100 SXM datasheet: 3,957.8 TFLOPS FP8 with sparsity / 2
H100_BANDWIDTH = 3.35e12  # NVIDIA H100 SXM datasheet: 3.35 TB/s


@pytest.fixture(scope="module")
def rows():
    return {r.id: r for r in load_table()}


@pytest.fixture(scope="module")
def openorca():
    return load_datasets()["openorca-llama2"]


def test_lognormal_median_reproduces_the_mean_it_was_solved_for():
    for mean, sigma, lo, hi in ((290.3, 0.8, 1, 1024), (129.0, 0.15, 1, 132), (651.6, 0.8, 1, 2000)):
        m = lognormal_median_for_mean(mean, sigma, lo, hi)
        assert clipped_lognormal_mean(m, sigma, lo, hi) == pytest.approx(mean, rel=1e-3)
    assert round(lognormal_median_for_mean(300.0, 0.0, 1, 1024)) == 300  # no spread: median = mean
    with pytest.raises(ValueError):
        lognormal_median_for_mean(1024.0, 0.5, 1, 1024)


def test_sampled_output_lengths_have_the_rows_measured_mean(rows, openorca):
    row = rows["v4.1-dell-h100x4-llama2-offline"]
    wl = build_workload(scenario_for(row, openorca, 20000, replicas=1))
    assert wl.output_tokens.mean() == pytest.approx(row.output_mean_tokens, rel=0.02)
    assert wl.output_tokens.max() <= 1024 and wl.input_tokens.max() <= 1024


def test_scenario_carries_the_rows_runtime_and_scheduler_knobs(rows, openorca):
    row = rows["v4.1-dell-h100x4-llama2-offline"]
    sc = scenario_for(row, openorca, 100)
    assert sc.runtime == row.runtime == "trtllm"
    assert sc.workload.arrival.process == "offline"
    assert (sc.scheduler.max_num_seqs, sc.scheduler.max_num_batched_tokens) == (896, 4096)
    assert sc.scheduler.memory_utilization == row.kv_memory_fraction
    assert scenario_for(row, openorca, 100, runtime="none", offline=False).runtime == "none"
    assert scenario_for(row, openorca, 100, offline=False).workload.arrival.process == "poisson"


def test_offline_prediction_is_below_the_hand_computed_roofline(rows, openorca):
    row = rows["v4.1-dell-h100x4-llama2-offline"]  # 4x H100 SXM, TP2 x 2 replicas, FP8
    pred = predict_row(row, openorca, SIZE)
    wl = build_workload(scenario_for(row, openorca, SIZE.offline_requests(row), replicas=1))
    isl, osl = float(wl.input_tokens.mean()), float(wl.output_tokens.mean())
    # compute: every prompt and output token passes every linear layer (2 FLOPs per parameter)
    flops_per_output_token = 2 * LINEAR_PARAMS * (isl + osl) / osl
    compute_bound = row.device_count * H100_FP8_DENSE_FLOPS / flops_per_output_token
    # memory: a decode step of at most max_batch sequences reads each device's FP8 weight shard once
    memory_bound = row.replicas * row.max_batch * H100_BANDWIDTH / (LINEAR_PARAMS / row.tp)
    assert 0 < pred.predicted_output_tokens_per_s < min(compute_bound, memory_bound)
    assert pred.runtime == row.runtime and pred.device_basis


def test_server_capacity_meets_its_slos_and_stays_below_offline(rows, openorca):
    row = rows["v4.1-dell-h100x4-llama2-server"]
    srv = predict_row(row, openorca, SIZE)
    sc = scenario_for(row, openorca, SIZE.requests(row), replicas=1)
    # no arrival process beats a full queue: the same deployment with every request at t = 0
    offline = throughput_of(simulate(scenario_for(row, openorca, SIZE.offline_requests(row), replicas=1,
                                                  offline=True)))
    assert 0 < srv.predicted_output_tokens_per_s <= offline.output_tokens_per_s * row.replicas
    # rerun one replica at its share of the capacity and check the constraints directly
    s = summarize(simulate(with_rate(sc, srv.capacity_rps / row.replicas)))
    assert s.ttft_s["p99"] <= row.ttft_p99_ms / 1e3
    assert s.tpot_s["p99"] <= row.tpot_p99_ms / 1e3
    assert np.isfinite(s.output_tokens_per_s)


def test_every_bundled_row_builds_a_valid_scenario():
    datasets = load_datasets()
    for row in load_table(datasets=datasets):
        sc = scenario_for(row, datasets[row.dataset], 50, replicas=1)
        assert (sc.parallelism.tp, sc.parallelism.pp, sc.parallelism.ep) == (row.tp, row.pp, row.ep)
        assert sc.scheduler.max_num_seqs == row.max_batch
        assert [s.metric for s in sc.slo] == (["ttft", "tpot"] if row.scenario == "Server" else [])


def test_offline_runs_have_the_measured_runs_request_count(rows):
    # v4.1 NVIDIA H100 x8 Llama 2 Offline: its mlperf_log_summary.txt prints samples_per_query : 200640,
    # dealt to 4 TP2 replicas -> 50,160 requests each
    row = rows["v4.1-nvidia-h100x8-llama2-offline"]
    assert row.samples == 200640 and row.replicas == 4
    assert RunSize().offline_requests(row) == 50160
    assert RunSize(max_offline_requests=10_000).offline_requests(row) == 10_000
    # a Server row has no sample count: its Offline cap is a steady state of 32 batch caps of 1,024
    srv = rows["v4.1-nvidia-h100x8-llama2-server"]
    assert srv.samples is None and RunSize().offline_requests(srv) == 32 * 1024
    # SGLang's table: --num-prompts 5000 on one engine
    assert RunSize().offline_requests(rows["vllm-0.6.0-a100x1-llama3.1-8b-offline"]) == 5000


def test_the_drain_at_the_end_of_a_short_offline_run_lowers_its_throughput(rows):
    # every request queued at t = 0: the last batches run part-empty, so tokens / makespan rises with
    # the run's length towards the steady state (a conservation check, not a fitted figure)
    row = rows["vllm-0.6.0-a100x1-llama3.1-8b-offline"]
    ds = load_datasets()[row.dataset]
    tput = [throughput_of(simulate(scenario_for(row, ds, n, replicas=1))).output_tokens_per_s
            for n in (300, 1200, 4800)]
    assert tput[0] < tput[1] < tput[2]


def test_engine_kernels_pick_the_rows_own_engine_profile_where_one_is_shipped(rows):
    from infersim.validation.predict import device_basis, row_efficiency

    vllm_h100 = rows["v5.1-redhat-h100x1-llama3.1-8b-offline"]      # vLLM 0.10 on an H100: vLLM kernels
    sglang_a100 = rows["sglang-0.3.0-a100x1-llama3.1-8b-offline"]   # SGLang on an A100: SGLang kernels
    vllm_mi300x = rows["v5.1-amd-mi300xx8-llama2-offline"]          # vLLM on ROCm: no measured kernels
    trt_h100 = rows["v4.1-nvidia-h100x8-llama2-offline"]            # TensorRT-LLM of mid-2024: the default profile
    trt_b200 = rows["v5.1-nvidia-b200x8-llama2-offline"]            # NVIDIA's v5.1 harness: TensorRT-LLM 1.0
    trt_hpe = rows["v5.1-hpe-h200x8-mixtral-server"]                # HPE's copy of it: the same pin
    assert [row_efficiency(r, "engine") for r in (vllm_h100, sglang_a100, vllm_mi300x, trt_h100, trt_b200,
                                                  trt_hpe)] == [
        "vllm", "sglang", "calibrated", "calibrated", "trtllm-1.0", "trtllm-1.0"]
    assert row_efficiency(vllm_h100, None) == "calibrated"
    # one engine's kernels on every row whose device has them (a what-if for the TensorRT-LLM rows)
    assert [row_efficiency(r, "vllm") for r in (sglang_a100, vllm_mi300x, trt_h100)] == [
        "vllm", "calibrated", "vllm"]
    with pytest.raises(ValueError, match="kernels must be None, 'engine' or one of vllm, sglang, trtllm-1.0"):
        row_efficiency(trt_h100, "trt")
    datasets = load_datasets()
    sc = scenario_for(vllm_h100, datasets[vllm_h100.dataset], 10, kernels="engine")
    assert (sc.hardware, sc.efficiency) == ("h100-sxm", "vllm")
    assert " vLLM kernels " in device_basis("h100-sxm", "vllm")
    assert device_basis("mi300x", row_efficiency(vllm_mi300x, "engine")).startswith("transferred from ")
