"""``infersim fidelity``, ``infersim calibrate`` and ``infersim profile``: the accuracy loop.

    infersim profile -o m.parquet                      # measure this machine (+ m-device.yaml)
    infersim calibrate --measurements m.parquet --hardware m-device.yaml -o cal.yaml
    infersim fidelity --measurements m.parquet --hardware cal.yaml
    infersim fidelity --all                            # the published table (aiconfigurator-core data)
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InfersimError
from ..hardware.choices import ENGINE_KERNELS
from .app import console
from .options import COUNT, NONNEG, SEED, Real, html_option, write_html_report

AIC = "aiconfigurator"
DEFAULT_DEVICE = "h100-sxm"
DEFAULT_SOURCE = "h100-sxm"


def _fidelity():
    from .. import fidelity  # raises a clear InfersimError without pyarrow

    return fidelity


def _progress(quiet: bool, description: str = "working"):
    """The command's ``progress(message, done=None, total=None)``: a bar with ETA on a terminal,
    timestamped lines otherwise (see cli/progress.py), closed when the command ends."""
    from .progress import progress_reporter

    reporter = progress_reporter(description, quiet=quiet)
    report = reporter.__enter__()
    click.get_current_context().call_on_close(lambda: reporter.__exit__(None, None, None))
    return report


def _aic_header() -> dict[str, str]:
    from ..fidelity.evaluate import package_version

    version = package_version("aiconfigurator-core")
    return {"measurements": f"aiconfigurator-core {version or '(version unknown)'} bundled kernel tables "
                            "(NVIDIA, Apache-2.0; plain rows, see src/infersim/fidelity/DATA.md)"}


def _aic_devices_with_spec() -> tuple[list[str], dict[str, str]]:
    """aiconfigurator devices that have an infersim hardware spec, and the others with a reason."""
    from ..fidelity.aic_tables import AIC_DEVICE_NAMES, aiconfigurator_systems_dir
    from ..hardware import builtin_names

    root = aiconfigurator_systems_dir()
    if root is None:
        raise InfersimError("aiconfigurator-core's data was not found; install it with: "
                            "pip install aiconfigurator-core (or give --measurements PATH)")
    names = builtin_names()
    with_spec, skipped = [], {}
    for system in sorted(p.name for p in (root / "data").iterdir() if p.is_dir()):
        dev = AIC_DEVICE_NAMES.get(system, system.replace("_", "-"))
        if dev in names:
            with_spec.append(dev)
        else:
            skipped[dev] = "measured, but infersim has no hardware spec for it"
    return with_spec, skipped


def _load(measurements: str | None, devices: list[str] | None, ops: list[str] | None, progress,
          framework: str | None = None):
    """(table, header, measurement name) for the selection; ``framework``: the tables of that kernel
    set only (an engine's in aiconfigurator-core, or one engine release; the collective libraries'
    included)."""
    fid = _fidelity()
    from ..fidelity.evaluate import select_rows

    if measurements in (None, AIC):
        if framework:
            from ..fidelity.kernel_sets import data_version, kernel_set, load_kernel_set

            package = kernel_set(framework).data
            data = f"{package} {data_version(framework)}"
            progress(f"loading {data} {framework} tables for {', '.join(devices) if devices else 'all devices'}")
            table = load_kernel_set(framework, devices, ops)
            header = {"measurements": f"{data} bundled kernel tables (NVIDIA, Apache-2.0; plain rows, see "
                                      f"src/infersim/fidelity/DATA.md); {framework} kernel tables only"}
            return table, header, package
        progress(f"loading aiconfigurator-core tables for {', '.join(devices) if devices else 'all devices'}")
        table = fid.load_aiconfigurator(devices=devices, ops=ops)
        return table, _aic_header(), "aiconfigurator-core"
    if framework:
        raise InfersimError("--framework picks the aiconfigurator tables of one kernel set; "
                            "leave it out with --measurements")
    table = fid.load_measurements(measurements)
    if ops:
        for op in ops:
            if op not in fid.OPS:
                from ..errors import unknown_name_error

                raise unknown_name_error("op", op, fid.OPS)
    table = select_rows(table, devices, ops)
    return table, {"measurements": str(measurements)}, Path(measurements).name


def _second_source(table, devices: list[str], ops: list[str] | None, framework: str, progress):
    """(rows, label): aiconfigurator-core's tables of ``framework`` for ``devices``, less every row of
    a file the first source read (the collective-library tables both share)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    progress(f"loading aiconfigurator-core {framework} tables (second source) for {', '.join(devices)}")
    other = _fidelity().load_aiconfigurator(devices=devices, ops=ops, framework=framework)
    other = other.filter(pc.invert(pc.is_in(other.column("source"), pa.array(sorted(set(
        table.column("source").to_pylist()))))))
    files = sorted({s.split("/")[-3] + "/" + s.split("/")[-2] for s in other.column("source").to_pylist()})
    return other, f"{framework} tables ({', '.join(files)}; {other.num_rows} rows)" if other.num_rows else None


def _measured_devices(table) -> list[str]:
    return sorted(set(table.column("device").to_pylist()))


def _hardware_map(devices: list[str], hardware: str | None) -> tuple[dict, dict[str, str], str]:
    """measured device name -> Device, skipped devices with reasons, and the label of the 'given' mode."""
    from ..hardware import builtin_names, get_device
    from ..hardware.catalog import starting_device

    if hardware is not None:
        if len(devices) != 1:
            raise InfersimError(f"--hardware describes one device but the measurements hold {len(devices)} "
                                f"({', '.join(devices)}); pick one with --device")
        dev = starting_device(hardware)
        label = "analytical" if not str(hardware).endswith((".yaml", ".yml")) and "/" not in str(hardware) \
            else "device file"
        return {devices[0]: dev}, {}, label
    names = builtin_names()
    out, skipped = {}, {}
    for d in devices:
        if d in names:
            out[d] = get_device(d, efficiency="spec")
        else:
            skipped[d] = "no hardware spec with this name (give --hardware NAME|PATH)"
    return out, skipped, "analytical"


@click.command("fidelity")
@click.option("--device", "-d", "devices", multiple=True,
              help="measured device(s) to evaluate (default: h100-sxm for the bundled data, every device of a file)")
@click.option("--op", "ops", multiple=True, help="restrict to these ops (gemm, attention_prefill, moe, allreduce, ...)")
@click.option("--measurements", default=None,
              help="long-format CSV/parquet of measurements (default: aiconfigurator-core's bundled tables)")
@click.option("--hardware", "-H", default=None, help="device NAME or YAML to evaluate (one measured device)")
@click.option("--all", "all_devices", is_flag=True,
              help="every device with data and a spec, held-out shapes and held-out device: the README table")
@click.option("--from", "source", default=DEFAULT_SOURCE, show_default=True,
              help="device whose calibration is carried to the others (held-out device split)")
@click.option("--no-calibrate", is_flag=True, help="only score the device as given (no fit)")
@click.option("--residual", is_flag=True, help="also fit and score a learned residual (needs scikit-learn)")
@click.option("--test-fraction", default=0.2, show_default=True, type=Real(min=0.0, max=1.0, min_open=True), help="held-out share of shapes")
@click.option("--seed", default=0, show_default=True, type=SEED, help="picks another deterministic split")
@click.option("--max-fit-rows", default=20_000, show_default=True, type=COUNT, help="rows per fit stage (subsampled)")
@click.option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False),
              help="write every row's measured and predicted latency here (for plotting)")
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
@click.option("--markdown", is_flag=True, help="print Markdown tables (as quoted in the README)")
@click.option("--workers", "-j", default=None, type=COUNT,
              help="processes calibrating devices side by side (default: one per core); same results for any number")
@click.option("--second-source", default="vllm", show_default=True,
              type=click.Choice(["trtllm", "vllm", "sglang", "none"]),
              help="also score the same devices' kernels measured under this framework (aiconfigurator data only; "
                   "nothing is fitted on them)")
@click.option("--framework", default=None, type=click.Choice(ENGINE_KERNELS),
              help="fit and score on this kernel set's tables (an engine's own kernels, or trtllm-1.0: "
                   "TensorRT-LLM 1.0's, from aiconfigurator 0.4.0), as the NAME@SET profiles are fitted; a "
                   "second source naming the same engine becomes TensorRT-LLM's tables")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines on stderr")
@html_option
def fidelity_cmd(devices, ops, measurements, hardware, all_devices, source, no_calibrate, residual, test_fraction,
                 seed, max_fit_rows, csv_path, as_json, markdown, workers, second_source, quiet, html_path=None,
                 framework=None) -> None:
    """How well does the cost model predict measured kernels? MdAPE / p90 / bias per device x op family.

    With no options: H100 SXM from aiconfigurator-core's bundled measurements, the device
    as specified (analytical) against calibrated on 60% of the shapes (structure chosen on a
    20% validation split), scored on a 20% test split no design choice looked at, and on the
    same device's kernels measured under vLLM (--second-source). --all adds every measured
    device and the held-out-device split.
    """
    from ..fidelity.evaluate import evaluate
    from ..fidelity.residual import residual_available

    if not 0.0 < test_fraction < 1.0:
        raise InfersimError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    if max_fit_rows < 10:
        raise InfersimError(f"--max-fit-rows must be >= 10, got {max_fit_rows}")
    if workers is not None and workers < 1:
        raise InfersimError(f"--workers must be >= 1, got {workers}")
    if residual and not residual_available():
        raise InfersimError("--residual needs scikit-learn; install it with: pip install 'infersim[fidelity]'")
    progress = _progress(quiet or as_json, "fidelity")
    devices = list(devices)
    skipped: dict[str, str] = {}
    use_aic = measurements in (None, AIC)
    if use_aic and not devices:
        if all_devices:
            devices, skipped = _aic_devices_with_spec()
            if framework:
                from ..fidelity.kernel_sets import kernel_set_devices

                in_set = set(kernel_set_devices(framework))
                skipped.update({d: f"no {framework} tables" for d in devices if d not in in_set})
                devices = [d for d in devices if d in in_set]
        else:
            devices = [DEFAULT_DEVICE]
    table, header, mname = _load(measurements, devices or None, list(ops) or None, progress, framework)
    if framework and second_source == framework:
        second_source = "trtllm"
    present = _measured_devices(table)
    if not present:
        raise InfersimError("no measured rows for the selected devices and ops"
                            + (f" ({', '.join(devices)})" if devices else ""))
    hw, more_skipped, given_label = _hardware_map(present, hardware)
    skipped.update(more_skipped)
    if not hw:
        raise InfersimError("none of the measured devices has a hardware spec: " + "; ".join(
            f"{d}: {r}" for d, r in skipped.items()))
    src = source if (source in hw and len(hw) > 1 and not no_calibrate) else None
    if src:
        header["source_device"] = src
    second, second_name = None, None
    if use_aic and second_source != "none":
        second, second_name = _second_source(table, list(hw), list(ops) or None, second_source, progress)
    report = evaluate(table, hw, calibrate_devices=not no_calibrate, residual=residual, source_device=src,
                      test_fraction=test_fraction, seed=seed, max_fit_rows=max_fit_rows,
                      keep_predictions=csv_path is not None or html_path is not None, header=header,
                      given_label=given_label, measurement_name=mname, progress=progress, workers=workers,
                      second=second, second_name=second_name)
    report.skipped.update(skipped)
    if csv_path:
        import pyarrow.csv as pacsv

        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(report.predictions, csv_path)
        progress(f"wrote {report.predictions.num_rows} rows to {csv_path}")
    if html_path:
        from ..report.html.fidelity_html import fidelity_plot_data

        data = json.loads(json.dumps(report.to_dict(), default=str))
        data["plots"] = fidelity_plot_data(report.predictions)
        write_html_report("fidelity", data, html_path)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    elif markdown:
        from ..report.fidelity_view import fidelity_markdown

        click.echo(fidelity_markdown(report), nl=False)
    else:
        from ..report.fidelity_view import render_fidelity

        render_fidelity(report, console)


@click.command("calibrate")
@click.option("--measurements", default=None,
              help="long-format CSV/parquet (or 'aiconfigurator' for the bundled tables of --hardware's device)")
@click.option("--hardware", "-H", default=None,
              help="the measured device: catalog NAME (its spec-sheet model) or path to its YAML")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False), help="device YAML to write")
@click.option("--device", "-d", default=None,
              help="which measured device's rows (default: the only one, or --hardware's name)")
@click.option("--op", "ops", multiple=True, help="fit only on these ops")
@click.option("--max-rows", default=20_000, show_default=True, type=COUNT, help="rows per fit stage (subsampled)")
@click.option("--name", default=None, help="name of the calibrated device (default: NAME-calibrated)")
@click.option("--all", "all_devices", is_flag=True,
              help="every catalog device: calibrated on aiconfigurator-core's tables where it has them, "
                   "transferred from the nearest measured device elsewhere (with --write-profiles)")
@click.option("--write-profiles", is_flag=True, help="with --all: write the shipped profiles (hardware/data/profiles)")
@click.option("--profiles-dir", default=None, type=click.Path(file_okay=False),
              help="with --all: write the profiles here instead of into the package")
@click.option("--workers", "-j", default=None, type=int,
              help="with --all: devices calibrated side by side (default 1); same profiles for any number")
@click.option("--framework", default=None, type=click.Choice(ENGINE_KERNELS),
              help="with --all: fit on this kernel set's tables (an engine's own kernels, or trtllm-1.0: "
                   "TensorRT-LLM 1.0's) and write its profiles (hardware/data/profiles/FRAMEWORK; used as "
                   "NAME@FRAMEWORK)")
@click.option("--json", "as_json", is_flag=True, help="print the fit as JSON")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines on stderr")
def calibrate_cmd(measurements, hardware, output, device, ops, max_rows, name, all_devices, write_profiles,
                  profiles_dir, workers, framework, as_json, quiet) -> None:
    """Fit a device's efficiency parameters to measurements; write a device YAML for --hardware.

    The spec-sheet numbers are kept; the efficiency section is replaced (its source names
    the measurements, row count, date and fit MdAPE). Fits on every given row: use
    `infersim fidelity` to see accuracy on held-out shapes.

    `infersim calibrate --all --write-profiles` regenerates the profiles every command uses
    by default (one calibration per measured device, a few minutes each); add
    `--framework vllm` (or sglang) for the profiles fitted on that engine's own kernels, or
    `--framework trtllm-1.0` for TensorRT-LLM 1.0's (needs `pip install --no-deps
    aiconfigurator==0.4.0`, whose tables are read as data).
    """
    import datetime as _dt

    from ..fidelity.calibrate import calibrate
    from ..fidelity.devicefile import calibrated_name, device_spec_with, write_device_yaml
    from ..fidelity.evaluate import select_rows
    from ..hardware.catalog import starting_device

    if max_rows < 10:
        raise InfersimError(f"--max-rows must be >= 10, got {max_rows}")
    progress = _progress(quiet or as_json, "calibrate")
    if all_devices:
        if workers is not None and workers < 1:
            raise InfersimError(f"--workers must be >= 1, got {workers}")
        _write_all_profiles(measurements, hardware, output, ops, write_profiles, profiles_dir, max_rows, workers,
                            framework, as_json, progress)
        return
    if write_profiles or profiles_dir or framework:
        raise InfersimError("--write-profiles, --profiles-dir and --framework go with --all")
    for flag, value in (("--measurements", measurements), ("--hardware", hardware), ("--output", output)):
        if value is None:
            raise InfersimError(f"{flag} is required (or give --all --write-profiles)")
    base = starting_device(hardware)
    if Path(output).suffix.lower() not in (".yaml", ".yml"):
        raise InfersimError(f"{output}: the output must be a .yaml or .yml file")
    want = device or (base.name if measurements == AIC else None)
    table, _, mname = _load(measurements, [want] if want else None, list(ops) or None, progress)
    present = _measured_devices(table)
    if want is None:
        if len(present) == 1:
            want = present[0]
        elif base.name in present:
            want = base.name
        else:
            raise InfersimError(f"{measurements}: holds {len(present)} devices ({', '.join(present)}); "
                                "pick one with --device")
    table = select_rows(table, [want])
    if table.num_rows == 0:
        raise InfersimError(f"{measurements}: no rows for device '{want}'"
                            + (f" and ops {', '.join(ops)}" if ops else "")
                            + (f"; devices present: {', '.join(present)}" if present else ""))
    progress(f"fitting {table.num_rows} rows of {want}")
    cal = calibrate(table, base, max_rows=max_rows, source=f"{mname} ({want}, {table.num_rows} rows)",
                    progress=progress)
    spec = device_spec_with(base, cal.efficiency, name or calibrated_name(base.name))
    comment = (f"{spec.display_name}: written by infersim calibrate on {_dt.date.today().isoformat()}\n"
               f"measurements: {measurements} (device {want}, {table.num_rows} rows)\n"
               "spec-sheet numbers unchanged; the efficiency section is fitted")
    path = write_device_yaml(spec, output, comment)
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps({"output": str(path), "rows": table.num_rows,
                               "efficiency": cal.efficiency.model_dump(mode="json"),
                               "stages": [asdict(s) for s in cal.stages]}, indent=2))
        return
    from ..report.fidelity_view import render_calibration

    render_calibration(cal, console)
    console.print(f"wrote {path} (use it with --hardware {path})", highlight=False)


def _write_all_profiles(measurements, hardware, output, ops, write_profiles, profiles_dir, max_rows, workers,
                        framework, as_json, progress) -> None:
    """``calibrate --all --write-profiles``: every catalog device's shipped profile."""
    from ..fidelity.shipped import measured_devices, write_all_profiles

    if not (write_profiles or profiles_dir):
        raise InfersimError("--all writes the shipped profiles: add --write-profiles (or --profiles-dir DIR)")
    if measurements not in (None, AIC) or hardware or output or ops:
        raise InfersimError("--all calibrates on aiconfigurator-core's tables: leave out --measurements, "
                            "--hardware, --output and --op")
    from ..fidelity.evaluate import package_version

    if framework is None:
        version = package_version("aiconfigurator-core")
        if version is None:
            raise InfersimError("aiconfigurator-core is not installed; install it with: "
                                "pip install aiconfigurator-core")
        measured, skipped = _aic_devices_with_spec()
    else:
        from ..fidelity.kernel_sets import data_version, kernel_set_devices

        version, measured = data_version(framework), kernel_set_devices(framework)
    measured = measured_devices(measured)
    written = write_all_profiles(measured, version, directory=profiles_dir, max_rows=max_rows,
                                 workers=workers or 1, framework=framework, progress=progress)
    if as_json:
        click.echo(json.dumps([{"device": d, "basis": b, "path": str(p)} for d, b, p in written], indent=2))
        return
    for d, b, p in written:
        console.print(f"{d}: {b} -> {p}", highlight=False)


@click.command("profile")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="measurements file to write (.parquet or .csv)")
@click.option("--grid", type=click.Choice(["tiny", "small", "full"]), default="small", show_default=True,
              help="shape grid (tiny: CI seconds; small: about a minute; full: minutes)")
@click.option("--device-name", default="local-cpu", show_default=True, help="device name written in the rows")
@click.option("--repeats", default=5, show_default=True, type=COUNT, help="passes over the grid, one timed sample of every kernel each (median)")
@click.option("--warmup", default=2, show_default=True, type=NONNEG, help="discarded samples per kernel before the first pass")
@click.option("--threads", default=None, type=COUNT,
              help="limit numpy's BLAS threads (1 = repeatable timings on a busy machine; needs threadpoolctl)")
@click.option("--spec-out", default=None, type=click.Path(dir_okay=False),
              help="device YAML measured for this machine (default: OUTPUT stem + '-device.yaml')")
@click.option("--quiet", "-q", is_flag=True, help="no progress lines on stderr")
def profile_cmd(output, grid, device_name, repeats, warmup, threads, spec_out, quiet) -> None:
    """Measure GEMM, attention and elementwise kernels on this machine (CPU, numpy fp32).

    Writes the long measurement format plus a device YAML whose peak FLOP/s and memory
    bandwidth are measured here (its sources say so); then run calibrate and fidelity on them.
    """
    from ..fidelity.devicefile import write_device_yaml
    from ..fidelity.measurement_files import save_measurements
    from ..fidelity.profile import grid as grid_of
    from ..fidelity.profile import measure_local_spec, profile

    out = Path(output)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise InfersimError(f"{output}: expected a .parquet or .csv file name")
    spec_path = Path(spec_out) if spec_out else out.with_name(out.stem + "-device.yaml")
    progress = _progress(quiet, "profile")
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", device_name):
        raise InfersimError(f"--device-name '{device_name}': use lower-case letters, digits, '.', '_' and '-'")
    progress("measuring peak FLOP/s and memory bandwidth")
    spec = measure_local_spec(device_name, matmul_n=grid_of(grid).spec_matmul_n, threads=threads)
    table = profile(grid, device_name=device_name, warmup=warmup, repeats=repeats, threads=threads, progress=progress)
    save_measurements(table, out)
    write_device_yaml(spec, spec_path, f"{spec.display_name}: measured by infersim profile --grid {grid}")
    console.print(f"wrote {table.num_rows} measurements to {out} and the device spec to {spec_path}", highlight=False)
    console.print(f"next: infersim calibrate --measurements {out} --hardware {spec_path} -o "
                  f"{spec_path.with_name(spec_path.stem + '-calibrated.yaml')}", highlight=False)
    console.print(f"      infersim fidelity --measurements {out} --hardware {spec_path}", highlight=False)
