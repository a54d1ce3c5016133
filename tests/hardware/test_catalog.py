"""The built-in hardware catalog: every file validates, numbers match the spec sheets,
the catalog is physically consistent, and bad files give errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infersim.errors import ConfigError, InfersimError
from infersim.hardware import builtin_names, get_device, load_hardware_file
from infersim.hardware.catalog import _data_dir

REQUIRED = [
    "h100-sxm", "h200", "b200", "gb200", "a100-sxm-80gb", "l40s", "mi300x", "mi325x",
    "tpu-v5e", "tpu-v5p", "tpu-v6e", "gaudi3", "cpu-xeon-8480",
]

NAMES = builtin_names()


def _close(actual: float, expected: float, rel: float = 1e-3) -> bool:
    return abs(actual - expected) <= rel * abs(expected)


def _raw(name: str) -> dict:
    """The parsed YAML of a built-in file, as a plain mapping a test can edit."""
    return yaml.safe_load(_data_dir().joinpath(f"{name}.yaml").read_text())


def _write(tmp_path: Path, data: dict | str, filename: str = "chip.yaml") -> Path:
    path = tmp_path / filename
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# --- every bundled file loads -------------------------------------------------------------

def test_required_devices_are_bundled():
    missing = sorted(set(REQUIRED) - set(NAMES))
    assert not missing, f"catalog lacks {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_builtin_file_loads_and_validates(name):
    dev = get_device(name)
    spec = dev.spec
    assert spec.name == name, "the name: key must equal the file name"
    assert get_device(name.upper()) is dev  # case-insensitive, cached
    # the hot-path view is the spec in SI units
    m = spec.memory
    given = m.capacity_mib * 2**20 if m.capacity_mib else m.capacity_gib * 2**30
    assert dev.memory_bytes == pytest.approx(given)
    assert dev.memory_bandwidth_bytes_per_s == pytest.approx(spec.memory.bandwidth_gb_per_s * 1e9)
    assert dev.scale_up.latency_s == pytest.approx(spec.scale_up.latency_us * 1e-6)
    # every section names where its numbers come from
    for section in (spec.compute, spec.memory, spec.scale_up, spec.scale_out, spec.power, spec.efficiency):
        assert len(section.source.strip()) > 10
    if spec.cost is not None:
        assert len(spec.cost.source.strip()) > 10
    # there is a bf16 path on every device (native or by fallback) and it is the fastest
    # 16-bit-or-wider rate it has
    assert dev.peak_flops("bf16") >= dev.peak_flops("fp32")


@pytest.mark.parametrize("name", NAMES)
def test_builtin_file_is_a_valid_user_file(name, tmp_path):
    """A built-in file copied out is accepted by the user-file path too (same format)."""
    path = _write(tmp_path, _raw(name), f"{name}.yaml")
    dev = load_hardware_file(path)
    assert dev.dense_flops_per_s == get_device(name).dense_flops_per_s


# --- spot values, computed by hand from the spec sheets ------------------------------------

SPOT = [
    # (device, what, value in SI units, where it comes from)
    ("h100-sxm", "bf16", 1978.9e12 / 2, "H100 datasheet 1,978.9 TFLOPS with sparsity"),
    ("h100-sxm", "fp8", 3957.8e12 / 2, "H100 datasheet 3,957.8 TFLOPS with sparsity"),
    ("h200", "bf16", 1979e12 / 2, "H200 datasheet 1,979 TFLOPS with sparsity"),
    ("b200", "bf16", 36e15 / 8 / 2, "HGX B200: 36 PFLOPS sparse for 8 GPUs"),
    ("b200", "fp8", 72e15 / 8 / 2, "HGX B200: 72 PFLOPS sparse for 8 GPUs"),
    ("b200", "fp4", 144e15 / 8 / 2, "HGX B200: 144 PFLOPS sparse for 8 GPUs"),
    ("gb200", "fp4", 1440e15 / 72 / 2, "GB200 NVL72: 1,440 PFLOPS sparse for 72 GPUs"),
    ("gb200", "bf16", 360e15 / 72 / 2, "GB200 NVL72: 360 PFLOPS sparse for 72 GPUs"),
    ("a100-sxm-80gb", "bf16", 624e12 / 2, "A100 datasheet 624 TFLOPS with sparsity"),
    ("a100-sxm-80gb", "fp32", 19.5e12, "A100 datasheet FP32"),
    ("l40s", "fp8", 1466e12 / 2, "L40S datasheet 1,466 TFLOPS with sparsity"),
    ("mi300x", "bf16", 2614.9e12 / 2, "MI300X datasheet 2,614.9 TFLOPS with sparsity"),
    ("mi300x", "fp8", 5229.8e12 / 2, "MI300X datasheet 5,229.8 TFLOPS with sparsity"),
    ("mi325x", "fp8", 5229.8e12 / 2, "MI325X datasheet 5,229.8 TFLOPS with sparsity"),
    ("tpu-v5e", "bf16", 197e12, "Cloud TPU v5e page"),
    ("tpu-v5e", "int8", 394e12, "Cloud TPU v5e page"),
    ("tpu-v5p", "bf16", 459e12, "Cloud TPU v5p page"),
    ("tpu-v6e", "bf16", 918e12, "Cloud TPU v6e page"),
    ("gaudi3", "bf16", 1835e12, "Gaudi 3 white paper, MME BF16"),
    ("gaudi3", "fp8", 1835e12, "Gaudi 3 white paper, MME FP8"),
    ("cpu-xeon-8480", "bf16", 56 * 1024 * 2.0e9, "56 cores x AMX 1,024 bf16 FLOP/cycle x 2.0 GHz"),
    ("cpu-xeon-8480", "int8", 56 * 2048 * 2.0e9, "56 cores x AMX 2,048 int8 OP/cycle x 2.0 GHz"),
]


@pytest.mark.parametrize("name,dtype,expected,why", SPOT, ids=[f"{s[0]}-{s[1]}" for s in SPOT])
def test_dense_peak_matches_spec_sheet(name, dtype, expected, why):
    dev = get_device(name)
    assert dtype in dev.dense_flops_per_s, f"{name} should list {dtype} natively ({why})"
    assert _close(dev.peak_flops(dtype), expected), (
        f"{name} {dtype}: {dev.peak_flops(dtype):.4g} FLOP/s, expected {expected:.4g} ({why})"
    )


MiB, GiB = 2**20, 2**30
MEMORY = [
    # (device, usable capacity in bytes as its source states it, bandwidth bytes/s); vendors' "GB" of
    # HBM / GDDR are binary, so a driver-reported MiB figure or a datasheet's GiB is the capacity
    ("h100-sxm", 81559 * MiB, 3.35e12),         # nvidia-smi: 81559MiB (NVIDIA/nccl #1264)
    ("h100-pcie", 80 * GiB, 2.0e12),            # aiconfigurator-core 0.12.0 h100_pcie.yaml: 80GiB
    ("h200", 143771 * MiB, 4.8e12),             # nvidia-smi: 143771MiB
    ("b200", 183359 * MiB, 64e12 / 8),          # nvidia-smi: 183359MiB (NVIDIA/TensorRT-LLM #10278)
    ("gb200", 189471 * MiB, 576e12 / 72),       # aiconfigurator-core gb200.yaml: 189471MiB reported by nvidia-smi
    ("a100-sxm-80gb", 81920 * MiB, 2039e9),     # nvidia-smi: 81920MiB (80 GiB)
    ("l40s", 46068 * MiB, 864e9),               # aiconfigurator-core l40s.yaml / nvidia-smi: 46068 MiB
    ("mi300x", 205822885888, 5.3e12),           # rocm-smi: VRAM Total Memory (B): 205822885888
    ("mi325x", 256 * GiB, 6.0e12),              # datasheet 256 GB read as GiB (no driver figure found)
    ("tpu-v5e", 16 * GiB, 819e9),               # Cloud TPU v5e page: 16 GiB
    ("tpu-v5p", 95 * GiB, 2765e9),              # Cloud TPU v5p page: 95 GiB
    ("tpu-v6e", 32 * GiB, 1600e9),              # Cloud TPU v6e page: 32 GB, read as GiB like v5e's
    ("gaudi3", 131072 * MiB, 3.67e12),          # hl-smi: 131072 MiB
    ("cpu-xeon-8480", 8 * 64 * GiB, 8 * 4800e6 * 8),  # 8 x 64 GiB RDIMMs; 8 channels x 4,800 MT/s x 8 bytes
]


def test_every_device_has_a_memory_figure():
    assert sorted(m[0] for m in MEMORY) == sorted(NAMES)


@pytest.mark.parametrize("name,capacity,bandwidth", MEMORY, ids=[m[0] for m in MEMORY])
def test_memory_matches_its_source(name, capacity, bandwidth):
    dev = get_device(name)
    assert dev.memory_bytes == capacity, f"{name}: {dev.memory_bytes:.6g} B, source says {capacity:.6g} B"
    assert _close(dev.memory_bandwidth_bytes_per_s, bandwidth), f"{name}: {dev.memory_bandwidth_bytes_per_s:.4g} B/s"
    # the bundled file gives the capacity in a binary unit, and its source says which figure it took
    mem = dev.spec.memory
    assert mem.capacity_gb is None, f"{name}: capacity in decimal GB; give capacity_mib or capacity_gib"
    assert "usable memory:" in mem.source


def test_vidur_a100_kv_blocks_follow_the_driver_capacity(tmp_path):
    """Llama-2-70B TP2 on A100 80GB (the Vidur comparison of issue 17): 80 GiB per GPU, not 80e9 bytes.

    The same device read the old way (``capacity_gb: 80``) has 80e9 bytes; everything else equal,
    the binary reading adds (81,920 MiB - 80e9 B) x memory utilization to each GPU's KV cache, i.e.
    that many bytes / (bytes per block) more blocks.
    """
    from infersim.serving.engine import prepare
    from infersim.serving.scenario import load_scenario

    sc = load_scenario(Path(__file__).parents[2] / "examples" / "scenarios" / "vidur-llama2-70b-tp2.yaml")
    sc = sc.with_changes(efficiency="spec")
    data = _raw("a100-sxm-80gb")
    del data["memory"]["capacity_mib"]
    data["memory"]["capacity_gb"] = 80
    old = prepare(sc.with_changes(hardware=str(_write(tmp_path, data))))
    new = prepare(sc)
    assert new.kv_capacity_bytes - old.kv_capacity_bytes == pytest.approx(
        (81920 * MiB - 80e9) * sc.scheduler.memory_utilization, rel=1e-9)
    block_bytes = new.kv_bytes_per_token * sc.scheduler.block_size
    assert new.blocks_per_engine == int(new.kv_capacity_bytes // block_bytes)
    assert old.blocks_per_engine == int(old.kv_capacity_bytes // block_bytes)
    assert new.blocks_per_engine > old.blocks_per_engine


@pytest.mark.parametrize("name,units", [
    ("a100-sxm-80gb", 108), ("h100-sxm", 132), ("h200", 132), ("b200", 148), ("gb200", 148),
    ("mi300x", 304), ("mi325x", 304), ("gaudi3", 8), ("cpu-xeon-8480", 56),
])
def test_compute_units(name, units):
    assert get_device(name).compute_units == units


@pytest.mark.parametrize("name,domain,topology,per_direction", [
    ("h100-sxm", 8, "switch", 900e9 / 2),     # NVLink 4: 900 GB/s bidirectional
    ("h200", 8, "switch", 900e9 / 2),
    ("a100-sxm-80gb", 8, "switch", 600e9 / 2),
    ("b200", 8, "switch", 1.8e12 / 2),        # NVLink 5: 1.8 TB/s bidirectional
    ("gb200", 72, "switch", 130e12 / 72 / 2),  # NVL72: 130 TB/s per rack
    ("mi300x", 8, "mesh", 7 * 128e9 / 2),     # 7 Infinity Fabric links x 128 GB/s bidirectional
    ("tpu-v5e", 256, "torus", 400e9 / 2),     # 400 GB/s bidirectional ICI per chip
    ("tpu-v5p", 8960, "torus", 1200e9 / 2),
    ("tpu-v6e", 256, "torus", 800e9 / 2),
    ("gaudi3", 8, "mesh", 21 * 200e9 / 8),    # 21 x 200 GbE ports to the 7 peers
    ("l40s", 8, "pcie", 64e9 / 2),            # PCIe Gen4 x16: 64 GB/s bidirectional
])
def test_scale_up_fabric(name, domain, topology, per_direction):
    link = get_device(name).scale_up
    assert link.domain_size == domain
    assert link.topology == topology
    assert _close(link.bandwidth_bytes_per_s, per_direction, rel=0.01)


def test_scale_out_nics():
    assert _close(get_device("h100-sxm").scale_out.bandwidth_bytes_per_s, 400e9 / 8)  # IB NDR 400 Gb/s
    assert _close(get_device("a100-sxm-80gb").scale_out.bandwidth_bytes_per_s, 200e9 / 8)  # IB HDR
    assert _close(get_device("gaudi3").scale_out.bandwidth_bytes_per_s, 3 * 200e9 / 8)  # 3 x 200 GbE
    assert _close(get_device("tpu-v5e").scale_out.bandwidth_bytes_per_s, 6.4e12 / 256 / 8)  # pod DCN / chips


def test_tpu_v5e_on_demand_price():
    assert get_device("tpu-v5e").usd_per_hour == pytest.approx(1.20)


# --- physical sanity across the catalog -----------------------------------------------------

# each pair (wide, narrow): a narrower type never has a lower dense peak than a wider one
NARROWING = [("fp32", "tf32"), ("fp32", "bf16"), ("tf32", "bf16"), ("bf16", "fp8"), ("fp8", "fp4"),
             ("fp16", "fp8"), ("int8", "int4"), ("bf16", "int8")]


@pytest.mark.parametrize("name", NAMES)
def test_dense_peak_non_decreasing_as_dtype_narrows(name):
    dense = get_device(name).dense_flops_per_s
    for wide, narrow in NARROWING:
        if wide in dense and narrow in dense:
            assert dense[wide] <= dense[narrow], f"{name}: {wide} {dense[wide]:.3g} > {narrow} {dense[narrow]:.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_fallback_never_beats_a_native_wider_dtype(name):
    """peak_flops through the fallback chain is monotone too: fp4 >= fp8 >= bf16 >= fp32."""
    dev = get_device(name)
    chain = [dev.peak_flops(d) for d in ("fp32", "bf16", "fp8", "fp4")]
    assert chain == sorted(chain), f"{name}: {chain}"


@pytest.mark.parametrize("name", NAMES)
def test_sparse_peak_is_twice_dense(name):
    dev = get_device(name)
    for dtype, sparse in dev.sparse_flops_per_s.items():
        assert dtype in dev.dense_flops_per_s, f"{name}: sparse {dtype} without a dense peak"
        assert _close(sparse, 2.0 * dev.dense_flops_per_s[dtype], rel=0.01), f"{name} {dtype}"


@pytest.mark.parametrize("name", NAMES)
def test_scale_out_not_faster_than_scale_up(name):
    dev = get_device(name)
    if dev.scale_up.topology == "pcie":  # no real scale-up fabric: PCIe can be slower than a NIC
        pytest.skip("PCIe-only part")
    assert dev.scale_out.bandwidth_bytes_per_s <= dev.scale_up.bandwidth_bytes_per_s
    assert dev.scale_out.topology == "network"
    assert dev.scale_out.domain_size >= dev.scale_up.domain_size


@pytest.mark.parametrize("name", NAMES)
def test_memory_hierarchy_sizes(name):
    dev = get_device(name)
    assert 0 < dev.sram_bytes < dev.memory_bytes
    # on-chip SRAM of today's parts is between ~10 MB and ~1 GB
    assert 10e6 < dev.sram_bytes < 1e9, f"{name}: {dev.sram_bytes / 1e6:.1f} MB"
    # bytes per FLOP of HBM/DRAM bandwidth at bf16 is well below 1 for every accelerator
    assert dev.memory_bandwidth_bytes_per_s / dev.peak_flops("bf16") < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_power_and_cost_plausible(name):
    dev = get_device(name)
    assert 50 <= dev.tdp_w <= 2000
    assert 0 <= dev.idle_w < dev.tdp_w
    if dev.usd_per_hour is not None:
        assert 0.1 < dev.usd_per_hour < 50


# --- user files -------------------------------------------------------------------------------

def test_user_yaml_file_by_path(tmp_path):
    data = _raw("h100-sxm")
    data["name"] = "my-chip"
    data["display_name"] = "My Chip"
    data["compute"]["dense_tflops"] = {"bf16": 500.0, "fp8": 1000.0}
    data["compute"]["sparse_tflops"] = {}
    del data["memory"]["capacity_mib"]
    data["memory"]["capacity_gb"] = 96  # the decimal field of earlier files still reads as 10^9 bytes
    path = _write(tmp_path, data)
    dev = get_device(str(path))
    assert dev.name == "my-chip"
    assert dev.peak_flops("bf16") == pytest.approx(500e12)
    assert dev.peak_flops("fp4") == pytest.approx(1000e12)  # fp4 -> fp8 fallback
    assert dev.memory_bytes == pytest.approx(96e9)
    assert get_device(path) == dev  # a Path works as well as a string
    assert "my-chip" not in builtin_names()


# --- error messages ----------------------------------------------------------------------------

def test_unknown_name_lists_close_matches():
    with pytest.raises(InfersimError) as info:
        get_device("h100")
    assert "h100-sxm" in str(info.value)


def test_missing_field_names_file_and_field(tmp_path):
    data = _raw("h100-sxm")
    del data["memory"]["bandwidth_gb_per_s"]
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert "memory.bandwidth_gb_per_s" in msg
    assert "missing" in msg


def test_negative_capacity_names_field(tmp_path):
    data = _raw("h100-sxm")
    data["memory"]["capacity_mib"] = -80
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    assert "memory.capacity_mib" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fields", [(), ("capacity_mib", "capacity_gib")], ids=["none", "two"])
def test_capacity_in_exactly_one_unit(tmp_path, fields):
    data = _raw("h100-sxm")
    del data["memory"]["capacity_mib"]
    for f in fields:
        data["memory"][f] = 80
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    msg = str(info.value)
    assert str(path) in msg and "memory" in msg and "capacity_mib" in msg and "capacity_gib" in msg
    assert "\n" not in msg


def test_gib_field_reads_binary(tmp_path):
    data = _raw("h100-sxm")
    del data["memory"]["capacity_mib"]
    data["memory"]["capacity_gib"] = 80
    assert get_device(str(_write(tmp_path, data))).memory_bytes == 80 * 2**30


def test_unknown_extra_field_is_named(tmp_path):
    data = _raw("h100-sxm")
    data["compute"]["warp_size"] = 32
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    assert "compute.warp_size" in str(info.value)
    assert "unknown field" in str(info.value)


def test_unknown_dtype_key_is_rejected(tmp_path):
    data = _raw("h100-sxm")
    data["compute"]["dense_tflops"]["fp6"] = 100.0
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    assert "compute.dense_tflops" in str(info.value)
    assert "fp6" in str(info.value)


def test_malformed_yaml_names_file(tmp_path):
    path = _write(tmp_path, "name: broken\ncompute: {dense_tflops: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        get_device(str(path))
    assert str(path) in str(info.value)
    assert "YAML" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        get_device(str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in str(info.value)


def test_fp8_on_a100_falls_back_to_bf16():
    a100 = get_device("a100-sxm-80gb")
    assert not a100.supports("fp8")
    assert a100.peak_flops("fp8") == a100.peak_flops("bf16")
    # and fp4 on H100 falls back to its fp8 peak
    h100 = get_device("h100-sxm")
    assert h100.peak_flops("fp4") == h100.peak_flops("fp8")
