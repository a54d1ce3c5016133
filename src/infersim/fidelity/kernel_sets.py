"""Kernel sets: which measured kernel tables an engine profile (``NAME@<set>``) is fitted on.

The default profiles are fitted on aiconfigurator-core's tables (per op, the first of
TensorRT-LLM, vLLM, SGLang with one, in the package's current version). A *kernel set* names
another set of tables, one per name of :data:`~infersim.hardware.choices.ENGINE_KERNELS`:

* ``vllm``, ``sglang``: aiconfigurator-core's tables of that engine only (its current version).
* ``trtllm-1.0``: TensorRT-LLM 1.0's tables, which aiconfigurator-core no longer ships (it holds
  1.3 release candidates). They come from the PyPI package ``aiconfigurator`` 0.4.0, whose
  ``systems/data/<device>/trtllm/<version>/*_perf.txt`` hold 1.0.0rc3 (H100 SXM, H200), 1.0.0rc6
  (B200, GB200) and 1.0.0 (A100 SXM, L40S), with NCCL tables beside them
  (``systems/data/<device>/nccl/<version>/``, the version the system YAML names). TensorRT-LLM
  1.0 is what MLPerf Inference v5.1's NVIDIA harness pinned ("7/24/25 1.0-mlpinf side branch",
  ``TRTLLM_HASH`` in ``closed/NVIDIA/Makefile.build`` and ``closed/HPE/Makefile.build`` of
  mlcommons/inference_results_v5.1). Install the data with ``pip install --no-deps
  aiconfigurator==0.4.0``: it is read as files, never imported.

Every set also takes the collective-library (NCCL) tables of its data package, which all
engines share. :func:`load_kernel_set` returns the long format of
:mod:`~infersim.fidelity.measurements`.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

from ..errors import InfersimError, unknown_name_error
from ..hardware.choices import KERNEL_SET_ENGINES
from .aic_tables import canonical_rows, infersim_device_name, load_aiconfigurator, plain_rows, version_key
from .measurements import OPS, empty_table

#: aiconfigurator-core's package name (the default profiles' data)
CORE = "aiconfigurator-core"


@dataclass(frozen=True)
class KernelSet:
    """One set of measured kernel tables: its data package (and the version it must be), the engine
    framework of its tables and, for a package with several releases of that engine, the release."""

    name: str
    data: str
    framework: str
    #: the data package version the tables are read from (None: whichever is installed)
    data_version: str | None = None
    #: engine release whose tables are read ("1.0": versions 1.0.0rc*, 1.0.0, 1.0.x); None: the package's choice
    release: str | None = None

    def installed_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.data)
        except importlib.metadata.PackageNotFoundError:
            return None

    def install_hint(self) -> str:
        pin = f"=={self.data_version}" if self.data_version else ""
        return f"pip install --no-deps {self.data}{pin}" if self.data != CORE else f"pip install {self.data}"


#: every name of :data:`~infersim.hardware.choices.ENGINE_KERNELS` (a test checks they match)
KERNEL_SETS: dict[str, KernelSet] = {
    "vllm": KernelSet("vllm", CORE, KERNEL_SET_ENGINES["vllm"]),
    "sglang": KernelSet("sglang", CORE, KERNEL_SET_ENGINES["sglang"]),
    "trtllm-1.0": KernelSet("trtllm-1.0", "aiconfigurator", KERNEL_SET_ENGINES["trtllm-1.0"], data_version="0.4.0",
                            release="1.0"),
}


def kernel_set(name: str) -> KernelSet:
    if name not in KERNEL_SETS:
        raise unknown_name_error("kernel set", name, list(KERNEL_SETS))
    return KERNEL_SETS[name]


# ------------------------------------------------------------------ aiconfigurator 0.4.0 layout

#: op -> (file name, kind of :func:`~infersim.fidelity.aic_tables.canonical_rows`) in the per-release
#: layout of aiconfigurator <= 0.4 (``data/<system>/<framework>/<version>/<file>``); "ccl" files sit
#: under ``data/<system>/nccl/<version>/``
LEGACY_FILES: dict[str, list[tuple[str, str]]] = {
    "gemm": [("gemm_perf.txt", "gemm")],
    "attention_prefill": [("context_attention_perf.txt", "attention")],
    "attention_decode": [("generation_attention_perf.txt", "attention")],
    "mla_prefill": [("context_mla_perf.txt", "mla_prefill")],
    "mla_decode": [("generation_mla_perf.txt", "mla_decode")],
    "moe": [("moe_perf.txt", "moe")],
    "allreduce": [("custom_allreduce_perf.txt", "custom_allreduce"), ("nccl_perf.txt", "ccl")],
    "allgather": [("nccl_perf.txt", "ccl")],
    "reducescatter": [("nccl_perf.txt", "ccl")],
    "alltoall": [("nccl_perf.txt", "ccl")],
}
#: system folder names of the old layout that differ from aiconfigurator-core's
LEGACY_SYSTEM_NAMES = {"gb200_sxm": "gb200"}


def legacy_systems_dir(kset: KernelSet) -> Path:
    """The ``systems`` folder of the installed data package of ``kset`` (located, not imported), after
    checking it is the pinned version."""
    have = kset.installed_version()
    if have is None or (kset.data_version and have != kset.data_version):
        found = f"{kset.data} {have} is installed" if have else f"{kset.data} is not installed"
        raise InfersimError(f"kernel set '{kset.name}' is read from {kset.data} {kset.data_version}'s tables and "
                            f"{found}; install it with: {kset.install_hint()}")
    dist = importlib.metadata.distribution(kset.data)
    root = Path(str(dist.locate_file(f"{kset.data.replace('-', '_')}/systems")))
    if not (root / "data").is_dir():
        raise InfersimError(f"{root}: {kset.data} {have} has no systems/data folder")
    return root


def _in_release(version: str, release: str) -> bool:
    want = tuple(int(x) for x in release.split("."))
    return version_key(version)[0][:len(want)] == want


def _pick_version(folder: Path, release: str | None, preferred: str | None = None) -> Path | None:
    """The version folder of ``folder`` to read: ``preferred`` if present, else the newest (of
    ``release`` when given)."""
    if not folder.is_dir():
        return None
    versions = [v for v in folder.iterdir() if v.is_dir() and (release is None or _in_release(v.name, release))]
    if preferred and any(v.name == preferred for v in versions):
        return folder / preferred
    return max(versions, key=lambda v: version_key(v.name)) if versions else None


def _nccl_version(root: Path, system: str) -> str | None:
    spec = root / f"{system}.yaml"
    if not spec.is_file():
        return None
    try:
        return str(((yaml.safe_load(spec.read_text()) or {}).get("misc") or {}).get("nccl_version") or "") or None
    except yaml.YAMLError:
        return None


def _legacy_systems(root: Path) -> dict[str, str]:
    """infersim device name -> system folder of the old layout."""
    out = {}
    for p in sorted((root / "data").iterdir()):
        if p.is_dir():
            out[infersim_device_name(LEGACY_SYSTEM_NAMES.get(p.name, p.name))] = p.name
    return out


def _load_legacy(kset: KernelSet, devices: Iterable[str] | None, ops: list[str]) -> pa.Table:
    root = legacy_systems_dir(kset)
    systems = _legacy_systems(root)
    wanted = list(systems) if devices is None else list(devices)
    tables = []
    read = functools.lru_cache(maxsize=None)(pacsv.read_csv)  # one NCCL file serves four collectives
    for dev in wanted:
        if dev not in systems:
            raise unknown_name_error("device", dev, list(systems))
        system = systems[dev]
        fw_dir = _pick_version(root / "data" / system / kset.framework, kset.release)
        ccl_dir = _pick_version(root / "data" / system / "nccl", None, _nccl_version(root, system))
        for op in ops:
            for filename, kind in LEGACY_FILES.get(op, []):
                folder, fw = (ccl_dir, "nccl") if kind == "ccl" else (fw_dir, kset.framework)
                path = folder / filename if folder is not None else None
                if path is None or not path.is_file():
                    continue
                rows = canonical_rows(read(path), kind, op, device=dev, framework=fw,
                                      source=f"{kset.data}-{kset.data_version}/systems/"
                                             + path.relative_to(root).as_posix())
                if rows is not None:
                    tables.append(rows)
                    break
    if not tables:
        return empty_table()
    return plain_rows(pa.concat_tables(tables).combine_chunks())


def kernel_set_devices(name: str) -> list[str]:
    """infersim names of the devices with tables in kernel set ``name`` (aiconfigurator-core sets: every
    system of the package; whether the engine measured it shows in the loaded rows)."""
    kset = kernel_set(name)
    if kset.data == CORE:
        from .aic_tables import aiconfigurator_systems_dir

        root = aiconfigurator_systems_dir()
        if root is None:
            raise InfersimError(f"{CORE}'s data was not found; install it with: {kset.install_hint()}")
        return sorted(infersim_device_name(p.name) for p in (root / "data").iterdir() if p.is_dir())
    root = legacy_systems_dir(kset)
    return sorted(d for d, s in _legacy_systems(root).items()
                  if _pick_version(root / "data" / s / kset.framework, kset.release) is not None)


def load_kernel_set(name: str, devices: Iterable[str] | str | None = None,
                    ops: Iterable[str] | str | None = None) -> pa.Table:
    """The long-format rows of kernel set ``name`` for ``devices`` (infersim names; None: all) and
    ``ops`` (None: all): plain kernels and MoE kernels under skewed routing, as
    :func:`~infersim.fidelity.aic_tables.load_aiconfigurator` keeps them."""
    kset = kernel_set(name)
    if isinstance(devices, str):
        devices = [devices]
    if kset.data == CORE:
        return load_aiconfigurator(devices=devices, ops=ops, framework=kset.framework)
    op_list = list(LEGACY_FILES) if ops is None else ([ops] if isinstance(ops, str) else list(ops))
    for op in op_list:
        if op not in OPS:
            raise unknown_name_error("op", op, OPS)
    return _load_legacy(kset, devices, op_list)


def data_version(name: str) -> str:
    """The installed version of kernel set ``name``'s data package (checked against its pin)."""
    kset = kernel_set(name)
    if kset.data != CORE:
        legacy_systems_dir(kset)
    version = kset.installed_version()
    if version is None:
        raise InfersimError(f"{kset.data} is not installed; install it with: {kset.install_hint()}")
    return version


__all__ = ["CORE", "KERNEL_SETS", "KernelSet", "data_version", "kernel_set",
           "kernel_set_devices", "load_kernel_set"]
