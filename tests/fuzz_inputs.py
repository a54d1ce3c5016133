"""Property-based fuzzing of every user input (the machinery; the tests are in test_fuzz_inputs.py
and the longer run in benchmarks/fuzz_inputs.py).

Every bundled device YAML, model config.json, example scenario, study and pipeline is parsed,
mutated (a field dropped, retyped, negated, made NaN / inf / huge / tiny / zero, a key written
twice, a value nested hundreds of levels deep, the file re-encoded or truncated) and run through
the command that reads it; CLI flags get the same treatment. The property, for every case:

* exit 0, and the output holds only finite numbers (no NaN / Infinity in JSON, no ``nan`` or
  ``inf`` in text); or
* exit != 0 with exactly one line on stderr and no traceback;
* and never a hang: each case must finish within :data:`CASE_TIMEOUT_S`.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import strategies as st

from infersim.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "infersim"
CORPUS: dict[str, list[Path]] = {
    "device": sorted((SRC / "hardware" / "data").glob("*.yaml")),
    "model": sorted((SRC / "models" / "data").glob("*.json")) + sorted((ROOT / "examples" / "disagg" / "models").glob("*.json")),
    "scenario": sorted((ROOT / "examples" / "scenarios").glob("*.yaml")),
    "study": sorted((ROOT / "examples" / "studies").glob("*.yaml")),
    "pipeline": sorted((ROOT / "examples" / "disagg").glob("*.yaml")),
}
#: a case that runs longer than this is a hang (generous: CI machines are shared)
CASE_TIMEOUT_S = 60.0

WEIRD_VALUES = ["x", "", [], {}, True, None, -1, 0, 1, 1.5, "1e400", "nan", "-inf", 2**70, -(2**40),
                [1, 2, 3], {"a": 1}, "0x10", "１２"]


class Hang(Exception):
    """A case ran past CASE_TIMEOUT_S."""


# ------------------------------------------------------------------------------------------------
# mutations
def _paths(data, max_depth: int = 12) -> list[tuple]:
    """Paths to every key and list item, down to ``max_depth`` levels (iterative)."""
    out = []
    stack = [(data, ())]
    while stack:
        node, prefix = stack.pop()
        if len(prefix) >= max_depth:
            continue
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append(prefix + (k,))
            stack.append((v, prefix + (k,)))
    return sorted(out, key=lambda p: tuple(map(str, p)))


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _nest(value, depth: int):
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def value_mutation(draw, old):
    op = draw(st.sampled_from(["drop", "retype", "negate", "nan", "inf", "huge", "tiny", "zero", "deep",
                               "scale"]))
    if op == "drop":
        return op, None
    if op == "retype":
        return op, copy.deepcopy(draw(st.sampled_from(WEIRD_VALUES)))
    number = old if isinstance(old, (int, float)) and not isinstance(old, bool) else 1.0
    if op == "negate":
        return op, -number if number else -1
    if op == "nan":
        return op, math.nan
    if op == "inf":
        return op, draw(st.sampled_from([math.inf, -math.inf]))
    if op == "huge":
        return op, draw(st.sampled_from([1e300, 10**12, 2**31, 1e18]))
    if op == "tiny":
        return op, draw(st.sampled_from([1e-300, 1e-12, 5e-324]))
    if op == "zero":
        return op, draw(st.sampled_from([0, 0.0]))
    if op == "deep":
        return op, _nest(old, draw(st.sampled_from([70, 300])))
    factor = draw(st.sampled_from([1000, 1e-3, 1e6, 1e-6]))
    return op, (number * factor if not isinstance(number, bool) else number)


@st.composite
def mutated_file(draw, kind: str):
    """(original path, mutated bytes, description) for one file of ``kind``."""
    path = draw(st.sampled_from(CORPUS[kind]))
    text = path.read_text(encoding="utf-8")
    is_json = path.suffix == ".json"
    data = json.loads(text) if is_json else yaml.safe_load(text)
    notes = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = _paths(data)
        if not paths:
            break
        numeric = [q for q in paths if isinstance(_get(data, q), (int, float)) and not isinstance(_get(data, q), bool)]
        gentle = numeric and draw(st.booleans())  # half the cases: a plausible number, to reach the outputs
        target = draw(st.sampled_from(numeric if gentle else paths))
        parent = _get(data, target[:-1])
        if gentle:
            op, factor = "times", draw(st.sampled_from([0.5, 2, 3, 0.25, 10]))
            old = parent[target[-1]]
            value = type(old)(old * factor) if isinstance(old, int) and factor >= 1 else old * factor
        else:
            op, value = draw(value_mutation(copy.deepcopy(parent[target[-1]])))
        if op == "drop":
            del parent[target[-1]]
        else:
            parent[target[-1]] = value
        notes.append(f"{op} {'.'.join(map(str, target))}")
    try:
        if is_json:
            out = json.dumps(data, indent=1)  # NaN / Infinity as Python writes them
        else:
            out = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except RecursionError:
        out = text
    if draw(st.integers(0, 15)) == 0:  # a document nested far deeper than any parser's recursion limit
        depth = draw(st.sampled_from([1000, 100_000]))
        out = ('{"a": ' * depth + "1" + "}" * depth) if is_json else ("[" * depth + "1" + "]" * depth)
        notes.append(f"deep-nest {depth}")
    text_op = draw(st.sampled_from(["none"] * 6 + ["duplicate", "truncate", "utf16", "latin1", "garbage"]))
    if text_op == "duplicate" and out.strip():
        lines = out.splitlines()
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        out = "\n".join(lines) + "\n"
    raw = out.encode("utf-8")
    if text_op == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif text_op == "utf16":
        raw = out.encode("utf-16")
    elif text_op == "latin1":
        raw = (out + "# café\n").encode("latin-1", errors="replace")
    elif text_op == "garbage":
        raw = raw + bytes(draw(st.lists(st.integers(0, 255), min_size=1, max_size=16)))
    notes.append(text_op)
    return path, raw, ", ".join(notes)


# ------------------------------------------------------------------------------------------------
# running a case
@dataclass
class Outcome:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    problem: str | None = None  # why the property failed (None: it held)
    kind: str = "ok"  # ok | error | traceback | hang | bad-output
    extra: dict = field(default_factory=dict)


_NONFINITE_TEXT = re.compile(r"(?<![A-Za-z_])(nan|inf|infinity)(?![A-Za-z_])|NaN|Infinity", re.IGNORECASE)


def _finite_json(text: str) -> str | None:
    try:
        data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except ValueError as exc:
        return f"output is not finite JSON: {exc}"
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float) and not math.isfinite(v):
            return f"non-finite number {v} in the output"
    return None


def _alarm(signum, frame):
    raise Hang()


def run_case(args: list[str], json_output: bool, cwd: Path | None = None) -> Outcome:
    """Run ``infersim args`` in process and check the property."""
    runner = CliRunner()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
    try:
        result = runner.invoke(cli, args, catch_exceptions=True)
    except Hang:  # pragma: no cover - the alarm fired outside click's handler
        return Outcome(args, -1, "", "", "hang", "hang")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    out = Outcome(args, result.exit_code, result.stdout, result.stderr)
    exc = result.exception
    if isinstance(exc, Hang):
        out.kind, out.problem = "hang", f"no answer within {CASE_TIMEOUT_S:.0f} s"
    elif exc is not None and not isinstance(exc, SystemExit):
        import traceback

        out.kind = "traceback"
        out.problem = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-3000:]
    elif result.exit_code == 0:
        problem = _finite_json(result.stdout) if json_output else (
            "non-finite value in the output" if _NONFINITE_TEXT.search(result.stdout) else None)
        if problem:
            out.kind, out.problem = "bad-output", problem
    elif result.exit_code == 1 and json_output and result.stdout.lstrip().startswith("{"):
        # estimate's "does not fit": exit 1 with its full report, which must be finite too
        problem = _finite_json(result.stdout)
        out.kind, out.problem = ("bad-output", problem) if problem else ("error", None)
    elif result.exit_code != 1:
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        if len(lines) != 1 or "Traceback" in result.stderr:
            out.kind = "traceback" if "Traceback" in result.stderr else "bad-error"
            out.problem = f"expected one error line, got {len(lines)}: {result.stderr[-2000:]}"
        else:
            out.kind = "error"
    else:
        out.kind = "error"
    return out


def command_for(kind: str, path: Path, workdir: Path) -> tuple[list[str], bool]:
    """The command that reads a file of ``kind`` (small sizes: bounded work) and whether it prints JSON."""
    small = ["--batch", "2", "--input", "64", "--output", "4", "--json"]
    if kind == "device":
        return ["estimate", "--hardware", str(path), *small], True
    if kind == "model":
        return ["estimate", "--model", str(path), *small], True
    if kind == "scenario":
        return ["simulate", str(path), "-n", "12", "--json"], True
    if kind == "pipeline":
        return ["pipeline", str(path), "-n", "6", "--json"], True
    return ["search", str(path), "--budget", "2", "--workers", "1", "--db", str(workdir / f"{path.stem}.duckdb"),
            "--no-progress"], False


def copy_examples(dest: Path) -> Path:
    """A scratch copy of examples/ (pipelines name model files relative to themselves)."""
    target = dest / "examples"
    if not target.exists():
        shutil.copytree(ROOT / "examples", target)
    return target


_counter = [0]


def write_case(workdir: Path, original: Path, raw: bytes) -> Path:
    """The mutated bytes beside a copy of the original's neighbours, under a fresh name."""
    _counter[0] += 1
    folder = workdir / "examples" / original.parent.name if original.parent.parent.name == "examples" else workdir
    if original.parent.name == "disagg":
        folder = workdir / "examples" / "disagg"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"case{_counter[0]}{original.suffix}"
    path.write_bytes(raw)
    return path


# ------------------------------------------------------------------------------------------------
# flags
FLAG_VALUES = ["nan", "inf", "-inf", "-1", "0", "1", "2", "1e-300", "1e300", "abc", "", "0.5", "3.7",
               "99999999999999999999", "-0", "1e3", "7"]
FLAG_COMMANDS: dict[str, tuple[list[str], list[str], bool]] = {
    # command: (base arguments, flags to fuzz, prints JSON)
    "estimate": (["estimate", "--json", "--input", "64", "--output", "4"],
                 ["--batch", "--input", "--output", "--tp", "--pp", "--ep", "--moe-imbalance",
                  "--memory-utilization", "--max-prefill-tokens", "--top"], True),
    "simulate": (["simulate", "--json", "-n", "8"], ["-n", "--rate", "--seed", "--trace-limit"], True),
    "sweep-rate": (["sweep-rate", "--json", "-n", "8", "--rates", "4,8"], ["--start", "--tolerance", "-n", "--seed"],
                   True),
    "pipeline": (["pipeline", str(ROOT / "examples" / "disagg" / "pd_vs_colocated.yaml"), "--json", "-n", "6"],
                 ["-n", "--rate", "--seed"], True),
    "results": (["results", "show", "nosuch"], ["--limit"], False),
}


@st.composite
def flag_case(draw):
    name = draw(st.sampled_from(sorted(FLAG_COMMANDS)))
    base, flags, is_json = FLAG_COMMANDS[name]
    args = list(base)
    for flag in draw(st.lists(st.sampled_from(flags), min_size=1, max_size=3, unique=True)):
        value = draw(st.sampled_from(FLAG_VALUES))
        if flag in ("-n",) and value in ("99999999999999999999", "1e300", "1e3"):
            value = "9"  # a valid huge request count is real work, not bad input
        args += [flag, value]
    if name == "sweep-rate" and "--start" in args:
        args.remove("--rates")
        args.remove("4,8")
    return args, is_json
