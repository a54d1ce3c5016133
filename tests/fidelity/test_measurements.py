"""The long measurement format: user files, the fixture sample and (when installed) aiconfigurator-core."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from infersim.errors import ConfigError, InfersimError
from infersim.fidelity import (
    COLUMNS,
    OPS,
    SCHEMA,
    aiconfigurator_systems_dir,
    empty_table,
    load_aiconfigurator,
    load_measurements,
    save_measurements,
)
from infersim.fidelity.aic_tables import infersim_device_name, version_key
from infersim.fidelity.measurements import KEY_COLUMNS, normalize_dtype

DATA = Path(__file__).resolve().parents[1] / "data" / "fidelity"
SAMPLE = DATA / "sample.parquet"
HAND = DATA / "hand.csv"

AIC_SYSTEMS = aiconfigurator_systems_dir()
needs_aic = pytest.mark.skipif(
    AIC_SYSTEMS is None,
    reason="aiconfigurator-core's data is not installed (pip install aiconfigurator-core)",
)


def write_csv(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------ schema


def test_schema_has_the_long_format_columns():
    expected = (
        "device op framework source m n k batch seq_len kv_len num_heads num_kv_heads head_dim "
        "tokens hidden inter topk num_experts tp ep num_devices message_bytes dtype kv_dtype variant latency_s"
    ).split()
    assert list(COLUMNS) == expected
    assert SCHEMA.names == expected
    assert empty_table().schema == SCHEMA
    assert empty_table().num_rows == 0


def test_dtype_names_normalize_to_infersim_names():
    assert normalize_dtype("bfloat16") == "bf16"
    assert normalize_dtype("half") == "fp16"
    assert normalize_dtype("FP8") == "fp8"
    assert normalize_dtype("nvfp4") == "fp4"
    assert normalize_dtype("int4") == "int4"
    assert normalize_dtype("posit8") is None


def test_device_names_map_to_infersim_names():
    assert infersim_device_name("h100_sxm") == "h100-sxm"
    assert infersim_device_name("h200_sxm") == "h200"
    assert infersim_device_name("a100_sxm") == "a100-sxm-80gb"
    assert infersim_device_name("b200_sxm") == "b200"
    assert infersim_device_name("gb200") == "gb200"
    assert infersim_device_name("some_new_gpu") == "some-new-gpu"


def test_version_order_puts_release_candidates_before_releases():
    versions = ["1.3.0rc20", "1.0.0", "1.3.0rc3", "1.3.0", "0.5.6.post2", "0.5.14", "1.3.0rc23"]
    assert sorted(versions, key=version_key) == [
        "0.5.6.post2",
        "0.5.14",
        "1.0.0",
        "1.3.0rc3",
        "1.3.0rc20",
        "1.3.0rc23",
        "1.3.0",
    ]


# ------------------------------------------------------------------ fixture files


def test_load_sample_parquet():
    t = load_measurements(SAMPLE)
    assert t.schema == SCHEMA
    assert 250 <= t.num_rows <= 400
    assert set(t.column("device").to_pylist()) == {"h100-sxm", "b200"}
    ops = set(t.column("op").to_pylist())
    assert ops <= set(OPS)
    assert {"gemm", "attention_prefill", "attention_decode", "moe", "allreduce", "allgather"} <= ops
    lat = t.column("latency_s").to_numpy()
    assert np.all(lat > 0) and np.all(lat < 1.0)  # seconds: kernels take us..ms
    # every source names an aiconfigurator table file
    assert all(s.startswith("aiconfigurator_core/systems/data/") for s in t.column("source").to_pylist())


def test_sample_rows_use_only_their_ops_columns():
    t = load_measurements(SAMPLE)
    gemm = t.filter(pc.equal(t.column("op"), "gemm"))
    assert gemm.num_rows > 0
    for c in ("m", "n", "k"):
        assert pc.min(gemm.column(c)).as_py() > 0
    for c in ("batch", "seq_len", "kv_len", "num_heads", "tokens", "hidden", "num_devices", "message_bytes"):
        assert pc.max(gemm.column(c)).as_py() == 0
    assert set(gemm.column("kv_dtype").to_pylist()) == {""}
    dec = t.filter(pc.equal(t.column("op"), "attention_decode"))
    assert set(dec.column("seq_len").to_pylist()) == {1}
    assert pc.min(dec.column("kv_len")).as_py() >= 2


def test_load_hand_written_csv_converts_ms_to_seconds():
    t = load_measurements(HAND)
    assert t.schema == SCHEMA
    assert t.num_rows == 7
    rows = t.to_pylist()
    assert rows[0]["latency_s"] == pytest.approx(0.2e-3)
    assert rows[1]["latency_s"] == pytest.approx(25e-6)
    assert rows[6]["latency_s"] == pytest.approx(125e-6)
    assert rows[0]["m"] == rows[0]["n"] == rows[0]["k"] == 4096
    assert rows[2]["dtype"] == "bf16"  # spelled bfloat16 in the file
    assert rows[2]["device"] == "my-accel"  # any device name is accepted
    assert all(r["framework"] == "user" for r in rows)
    assert all(r["source"] == str(HAND) for r in rows)
    # derived defaults
    prefill, decode = rows[3], rows[4]
    assert prefill["kv_len"] == prefill["seq_len"] == 4096
    assert decode["seq_len"] == 1 and decode["num_kv_heads"] == 32 and decode["kv_dtype"] == "fp8"
    assert rows[6]["message_bytes"] == 16 * 2**20 and rows[6]["num_devices"] == 8


@pytest.mark.parametrize(
    ("column", "value", "seconds"),
    [("latency_s", "0.0025", 0.0025), ("latency_ms", "2.5", 0.0025), ("latency_us", "2500", 0.0025)],
)
def test_latency_units_convert_to_seconds(tmp_path, column, value, seconds):
    path = write_csv(tmp_path, f"device,op,m,n,k,dtype,{column}\nh100-sxm,gemm,1,2,3,bf16,{value}\n")
    t = load_measurements(path)
    assert t.column("latency_s").to_pylist() == [pytest.approx(seconds)]


def test_latency_ms_hand_made_row(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,k,latency_ms\nx,gemm,64,64,64,1.5\nx,gemm,64,64,128,0.001\n")
    assert load_measurements(path).column("latency_s").to_pylist() == [
        pytest.approx(1.5e-3),
        pytest.approx(1e-6),
    ]


# ------------------------------------------------------------------ errors


def test_unknown_latency_unit_names_file_column_and_accepted_units(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,k,latency_ns\nx,gemm,1,1,1,5\n")
    with pytest.raises(ConfigError) as err:
        load_measurements(path)
    msg = str(err.value)
    assert err.value.field == "latency_ns"
    assert str(path) in msg and "latency_ns" in msg
    assert "latency_s" in msg and "latency_ms" in msg and "latency_us" in msg


def test_latency_without_unit_is_rejected(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,k,latency\nx,gemm,1,1,1,5\n")
    with pytest.raises(ConfigError) as err:
        load_measurements(path)
    assert err.value.field == "latency"
    assert str(path) in str(err.value) and "latency_ms" in str(err.value)


def test_missing_latency_column(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,k\nx,gemm,1,1,1\n")
    with pytest.raises(ConfigError, match="required column missing; expected columns") as err:
        load_measurements(path)
    assert str(path) in str(err.value)


def test_two_latency_columns_are_ambiguous(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,k,latency_ms,latency_us\nx,gemm,1,1,1,5,5000\n")
    with pytest.raises(ConfigError, match="more than one latency column"):
        load_measurements(path)


@pytest.mark.parametrize("missing", ["device", "op"])
def test_missing_required_column_names_file_and_column(tmp_path, missing):
    cols = {"device": "x", "op": "gemm", "m": "1", "n": "1", "k": "1", "latency_ms": "1"}
    del cols[missing]
    path = write_csv(tmp_path, ",".join(cols) + "\n" + ",".join(cols.values()) + "\n")
    with pytest.raises(ConfigError) as err:
        load_measurements(path)
    assert err.value.field == missing
    assert err.value.path == path
    msg = str(err.value)
    assert str(path) in msg and f"'{missing}'" in msg
    assert "required column missing; expected columns:" in msg


def test_missing_shape_column_of_an_op(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,latency_ms\nx,gemm,1,1,1\n")
    with pytest.raises(ConfigError) as err:
        load_measurements(path)
    assert err.value.field == "k"
    assert "required column missing" in str(err.value) and "gemm" in str(err.value)


def test_blank_required_shape_value(tmp_path):
    path = write_csv(tmp_path, "device,op,m,n,k,latency_ms\nx,gemm,1,1,1,1\nx,gemm,1,,1,1\n")
    with pytest.raises(ConfigError, match="data row 2") as err:
        load_measurements(path)
    assert err.value.field == "n"


def test_unknown_op_and_dtype_and_bad_values(tmp_path):
    bad_op = write_csv(tmp_path, "device,op,latency_ms\nx,conv2d,1\n", "a.csv")
    with pytest.raises(ConfigError, match="unknown op 'conv2d'") as err:
        load_measurements(bad_op)
    assert err.value.field == "op"
    bad_dtype = write_csv(tmp_path, "device,op,m,n,k,dtype,latency_ms\nx,gemm,1,1,1,posit8,1\n", "b.csv")
    with pytest.raises(ConfigError, match="unknown dtype 'posit8'") as err:
        load_measurements(bad_dtype)
    assert err.value.field == "dtype"
    bad_lat = write_csv(tmp_path, "device,op,m,n,k,latency_ms\nx,gemm,1,1,1,0\n", "c.csv")
    with pytest.raises(ConfigError, match="positive") as err:
        load_measurements(bad_lat)
    assert err.value.field == "latency_ms"
    bad_int = write_csv(tmp_path, "device,op,m,n,k,latency_ms\nx,gemm,1.5,1,1,1\n", "d.csv")
    with pytest.raises(ConfigError, match="whole number") as err:
        load_measurements(bad_int)
    assert err.value.field == "m"
    text_int = write_csv(tmp_path, "device,op,m,n,k,latency_ms\nx,gemm,big,1,1,1\n", "e.csv")
    with pytest.raises(ConfigError, match="'big'") as err:
        load_measurements(text_int)
    assert err.value.field == "m"


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_measurements(tmp_path / "nope.csv")
    other = tmp_path / "m.json"
    other.write_text("{}")
    with pytest.raises(ConfigError, match="expected a .csv or .parquet"):
        load_measurements(other)
    with pytest.raises(ConfigError, match="expected a .csv or .parquet"):
        save_measurements(empty_table(), tmp_path / "out.txt")


def test_parquet_user_file_is_validated_too(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"device": ["x"], "op": ["gemm"], "m": [1], "n": [1], "k": [1], "latency_ns": [5.0]}), path)
    with pytest.raises(ConfigError) as err:
        load_measurements(path)
    assert err.value.field == "latency_ns" and str(path) in str(err.value)


# ------------------------------------------------------------------ save / load round trip


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_save_and_load_round_trip(tmp_path, suffix):
    original = load_measurements(SAMPLE)
    out = save_measurements(original, tmp_path / f"copy{suffix}")
    again = load_measurements(out)
    assert again.schema == SCHEMA
    for name in COLUMNS:
        if name == "latency_s":
            np.testing.assert_allclose(again.column(name).to_numpy(), original.column(name).to_numpy(), rtol=1e-12)
        else:
            assert again.column(name).to_pylist() == original.column(name).to_pylist(), name


def test_save_fills_missing_columns(tmp_path):
    partial = pa.table({"device": ["x"], "op": ["gemm"], "m": [2], "n": [3], "k": [4], "latency_s": [1e-5]})
    out = save_measurements(partial, tmp_path / "p.parquet")
    t = load_measurements(out)
    assert t.schema == SCHEMA
    assert t.to_pylist()[0]["tokens"] == 0 and t.to_pylist()[0]["dtype"] == ""


# ------------------------------------------------------------------ the real package


@needs_aic
def test_real_data_is_found_without_importing_the_package():
    imported_before = "aiconfigurator_core" in sys.modules
    root = aiconfigurator_systems_dir()
    assert (root / "data").is_dir()
    t = load_aiconfigurator(devices=["h100-sxm"], ops=["allgather"])
    assert t.num_rows > 0
    if not imported_before:
        assert "aiconfigurator_core" not in sys.modules


@needs_aic
def test_real_gemm_h100_units_and_shape():
    t = load_aiconfigurator(devices=["h100-sxm"], ops=["gemm"])
    assert t.schema == SCHEMA
    assert t.num_rows > 10_000
    assert set(t.column("framework").to_pylist()) == {"trtllm"}
    assert set(t.column("variant").to_pylist()) == {""}
    big = t.filter(
        pc.and_(
            pc.and_(pc.equal(t.column("m"), 8192), pc.equal(t.column("n"), 8192)),
            pc.and_(pc.equal(t.column("k"), 8192), pc.equal(t.column("dtype"), "bf16")),
        )
    )
    assert big.num_rows == 1
    seconds = big.column("latency_s")[0].as_py()
    tflops = 2 * 8192**3 / seconds / 1e12
    assert 400 < tflops < 989  # H100 SXM dense bf16 peak is 989 TFLOPS


@needs_aic
def test_real_data_one_table_per_device_op_and_unique_keys():
    t = load_aiconfigurator(devices=["h100-sxm", "b200"])
    d = t.select(["device", "op", "source"]).to_pydict()
    sources: dict[tuple[str, str], set[str]] = {}
    for dev, op, src in zip(d["device"], d["op"], d["source"]):
        sources.setdefault((dev, op), set()).add(src)
    assert all(len(s) == 1 for s in sources.values()), sources
    # the current trtllm version, not the sparse next one (1.3.0rc23)
    assert sources[("h100-sxm", "moe")] == {"aiconfigurator_core/systems/data/h100_sxm/moe/trtllm/1.3.0rc20/moe_perf.parquet"}
    # plain rows are unique per key (device, op, shape, dtypes, variant)
    from infersim.fidelity.measurements import hash_rows

    h = hash_rows(t, KEY_COLUMNS)
    assert np.unique(h).size == t.num_rows
    ops = {op for _, op in sources}
    assert {"gemm", "attention_prefill", "attention_decode", "mla_prefill", "mla_decode", "moe"} <= ops
    assert {"allreduce", "allgather", "reducescatter", "alltoall"} <= ops


@needs_aic
def test_real_data_variants_and_framework_choice():
    plain = load_aiconfigurator(devices=["h100_sxm"], ops=["moe"])  # aiconfigurator names work too
    every = load_aiconfigurator(devices=["h100-sxm"], ops=["moe"], include_variants=True)
    assert every.num_rows > plain.num_rows > 0
    variants = set(every.column("variant").to_pylist())
    assert {"", "fp8_block", "dist=power_law_1.01"} <= variants
    vllm = load_aiconfigurator(devices=["h100-sxm"], ops=["gemm"], framework="vllm")
    assert set(vllm.column("framework").to_pylist()) == {"vllm"}
    assert all("/gemm/vllm/" in s for s in set(vllm.column("source").to_pylist()))


@needs_aic
def test_real_collectives_message_bytes():
    t = load_aiconfigurator(devices=["h100-sxm"], ops=["allgather", "allreduce"])
    ag = t.filter(pc.equal(t.column("op"), "allgather"))
    assert set(ag.column("framework").to_pylist()) == {"nccl"}
    assert set(ag.column("dtype").to_pylist()) == {"fp16", "int8"}
    assert pc.max(ag.column("message_bytes")).as_py() == 512 * 2**20  # nccl-tests range 512 B .. 512 MiB
    assert set(ag.column("num_devices").to_pylist()) == {2, 4, 8}
    ar = t.filter(pc.equal(t.column("op"), "allreduce"))
    assert set(ar.column("framework").to_pylist()) == {"trtllm"}
    assert pc.max(ar.column("message_bytes")).as_py() == 2**30  # 2**29 bf16 elements


@needs_aic
def test_real_attention_decode_is_per_layer_seconds():
    t = load_aiconfigurator(devices=["h100-sxm"], ops=["attention_decode"])
    rows = t.filter(
        pc.and_(
            pc.and_(pc.equal(t.column("batch"), 64), pc.equal(t.column("kv_len"), 8192)),
            pc.and_(
                pc.and_(pc.equal(t.column("num_heads"), 32), pc.equal(t.column("num_kv_heads"), 8)),
                pc.and_(pc.equal(t.column("head_dim"), 128), pc.equal(t.column("kv_dtype"), "bf16")),
            ),
        )
    ).to_pylist()
    assert len(rows) == 1 and rows[0]["seq_len"] == 1
    kv_bytes = 64 * 8192 * 8 * 128 * 2 * 2  # K and V, bf16
    bandwidth = kv_bytes / rows[0]["latency_s"]
    assert 1.5e12 < bandwidth < 3.35e12  # H100 SXM HBM3: 3.35 TB/s


@needs_aic
def test_real_sample_fixture_matches_the_package():
    meta = pq.read_schema(SAMPLE).metadata or {}
    import importlib.metadata

    if meta.get(b"aiconfigurator_core_version", b"").decode() != importlib.metadata.version("aiconfigurator-core"):
        pytest.skip("the fixture was built from another aiconfigurator-core version")
    from tests.fidelity.make_sample import build_sample

    rebuilt = build_sample()
    assert rebuilt.to_pylist() == load_measurements(SAMPLE).to_pylist()


def test_load_aiconfigurator_errors(tmp_path):
    with pytest.raises(InfersimError, match="not an aiconfigurator systems folder"):
        load_aiconfigurator(systems_dir=tmp_path)
    (tmp_path / "data" / "h100_sxm").mkdir(parents=True)
    with pytest.raises(InfersimError, match="unknown device 'h100'"):
        load_aiconfigurator(devices=["h100"], systems_dir=tmp_path)
    with pytest.raises(InfersimError, match="unknown op"):
        load_aiconfigurator(ops=["conv"], systems_dir=tmp_path)
    with pytest.raises(InfersimError, match="unknown framework"):
        load_aiconfigurator(framework="tensorrt", systems_dir=tmp_path)
    assert load_aiconfigurator(systems_dir=tmp_path).num_rows == 0  # no tables at all


def test_load_aiconfigurator_from_a_tiny_tree(tmp_path):
    """The selection rules on a hand-built tree: current version, framework preference, ms -> s."""
    data = tmp_path / "data" / "h100_sxm" / "gemm"
    gemm = {"framework": ["X"], "version": ["v"], "device": ["d"], "op_name": ["gemm"], "kernel_source": ["k"],
            "gemm_dtype": ["bfloat16"], "m": [1], "n": [2], "k": [3]}
    for fw, ver, lat in [("trtllm", "1.3.0rc20", 1.0), ("trtllm", "1.3.0rc23", 2.0), ("vllm", "0.24.0", 3.0)]:
        (data / fw / ver).mkdir(parents=True)
        pq.write_table(pa.table({**gemm, "latency": [lat]}), data / fw / ver / "gemm_perf.parquet")
    (tmp_path / "query_versions.yaml").write_text("defaults:\n  trtllm: {current: '1.3.0rc20'}\n")
    t = load_aiconfigurator(systems_dir=tmp_path)
    assert t.to_pylist()[0]["latency_s"] == pytest.approx(1e-3)
    assert t.to_pylist()[0]["device"] == "h100-sxm"
    assert t.to_pylist()[0]["source"].endswith("h100_sxm/gemm/trtllm/1.3.0rc20/gemm_perf.parquet")
    (tmp_path / "query_versions.yaml").unlink()  # no "current": the newest version wins
    assert load_aiconfigurator(systems_dir=tmp_path).to_pylist()[0]["latency_s"] == pytest.approx(2e-3)
    assert load_aiconfigurator(systems_dir=tmp_path, framework="vllm").to_pylist()[0]["latency_s"] == pytest.approx(3e-3)


def test_load_aiconfigurator_without_the_package(monkeypatch):
    from infersim.fidelity import aic_tables

    monkeypatch.setattr(aic_tables, "aiconfigurator_systems_dir", lambda: None)
    with pytest.raises(InfersimError, match="pip install aiconfigurator-core"):
        load_aiconfigurator()
