"""The results database: one DuckDB file, one row per evaluated point.

Tables::

    studies(name PK, spec JSON, scoring JSON, namespace, created_at, updated_at)
    evaluations(study, key, trial, status, feasible, config JSON, metrics JSON, error,
                evaluator, elapsed_s, created_at; PRIMARY KEY (study, key))

``key`` is a stable hash of the study's namespace (name + how it is evaluated)
and the canonical configuration, so a re-run skips points already stored.
Rows are committed in small transactions as results arrive, so a killed run
loses at most its in-flight evaluations. Studies compare by SQL, e.g.::

    SELECT study, config->>'device' AS device,
           min((metrics->>'usd_per_million_output_tokens')::DOUBLE) AS best_usd
    FROM evaluations WHERE feasible GROUP BY ALL ORDER BY best_usd;

One writer at a time: a writer holds an exclusive ``flock`` on ``<db>.lock``
for as long as it runs (released by the OS if it dies); a second writer waits
for it or is refused with the holder's pid. Readers open the file read-only
and are told clearly when a running search holds it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InfersimError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_DB = "infersim.duckdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name VARCHAR PRIMARY KEY,
    spec JSON,
    scoring JSON,
    namespace VARCHAR,
    created_at TIMESTAMP DEFAULT now(),
    updated_at TIMESTAMP DEFAULT now()
);
CREATE TABLE IF NOT EXISTS evaluations (
    study VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    trial BIGINT,
    status VARCHAR NOT NULL,
    feasible BOOLEAN NOT NULL,
    config JSON NOT NULL,
    metrics JSON,
    error VARCHAR,
    evaluator VARCHAR,
    elapsed_s DOUBLE,
    created_at TIMESTAMP DEFAULT now(),
    PRIMARY KEY (study, key)
);
"""


def import_duckdb():
    try:
        import duckdb
    except ImportError:
        raise InfersimError("the results database needs duckdb: pip install 'infersim[search]'") from None
    return duckdb


class WriterLock:
    """An exclusive, process-lifetime lock on ``<db>.lock`` (fcntl.flock; freed if the process dies)."""

    def __init__(self, db_path: Path, wait: bool = False, poll_s: float = 0.5) -> None:
        import fcntl

        self.path = Path(str(db_path) + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InfersimError(f"{self.path}: cannot create the database's lock file ({exc.strerror}); the "
                                "search needs a writable directory: pass --db with a path in one") from None
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = self._holder()
                    os.close(self._fd)
                    raise InfersimError(
                        f"{db_path}: another infersim search is writing to this database ({holder}); "
                        "wait for it to finish, pass --wait to queue behind it, or use --db for another file"
                    ) from None
                time.sleep(poll_s)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())

    def _holder(self) -> str:
        try:
            text = Path(self.path).read_text().strip()
        except OSError:
            text = ""
        return text or "unknown process"

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class ResultStore:
    """Read/write access to the results database (use :func:`open_store`)."""

    def __init__(self, path: Path, con, lock: WriterLock | None) -> None:
        self.path = path
        self.con = con
        self._lock = lock

    # ----- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.con.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- studies ----------------------------------------------------------------------------
    def register_study(self, name: str, spec: dict, scoring: dict, namespace: str) -> None:
        """Create or update a study's record (spec and scoring follow the latest run)."""
        self.con.execute(
            "INSERT INTO studies (name, spec, scoring, namespace) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, scoring = excluded.scoring, "
            "namespace = excluded.namespace, updated_at = now()",
            [name, json.dumps(spec), json.dumps(scoring), namespace])

    def study_record(self, name: str) -> dict | None:
        rows = self.con.execute("SELECT name, spec, scoring, namespace FROM studies WHERE name = ?", [name]).fetchall()
        row = rows[0] if rows else None
        if row is None:
            return None
        return {"name": row[0], "spec": json.loads(row[1]), "scoring": json.loads(row[2]), "namespace": row[3]}

    def study_names(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT name FROM studies ORDER BY name").fetchall()]

    def summaries(self) -> list[dict]:
        rows = self.con.execute("""
            SELECT s.name, count(e.key), count(e.key) FILTER (WHERE e.status = 'ok'),
                   count(e.key) FILTER (WHERE e.feasible), count(e.key) FILTER (WHERE e.status = 'rejected'),
                   count(e.key) FILTER (WHERE e.status = 'failed'), s.updated_at
            FROM studies s LEFT JOIN evaluations e ON e.study = s.name
            GROUP BY s.name, s.updated_at ORDER BY s.name""").fetchall()
        keys = ("study", "evaluated", "ok", "feasible", "rejected", "failed", "updated_at")
        return [dict(zip(keys, r)) for r in rows]

    # ----- evaluations ------------------------------------------------------------------------
    def insert(self, study: str, batch) -> int:
        """Insert a :class:`~infersim.search.backends.Batch` in one transaction (stored keys are skipped).

        The metrics JSON is assembled by DuckDB from the numeric columns (NaN and inf become null).
        """
        import numpy as np

        n = len(batch)
        if n == 0:
            return 0
        names = list(batch.metrics)
        data = {
            "key": np.array(batch.keys, dtype=object), "trial": np.asarray(batch.trials, dtype=np.int64),
            "status": np.array(batch.status, dtype=object), "feasible": np.asarray(batch.feasible, dtype=bool),
            "config": np.array(batch.configs, dtype=object), "error": np.array(batch.errors, dtype=object),
            "elapsed_s": np.full(n, float(batch.elapsed_s)),
        }
        finite = np.zeros(n, dtype=bool)
        for j, name in enumerate(names):
            col = np.asarray(batch.metrics[name], dtype=np.float64)
            data[f"m{j}"] = col
            finite |= np.isfinite(col)
        data["has_metrics"] = finite
        if names:
            pairs = ", ".join(f"'{_sql_string(name)}', CASE WHEN isfinite(m{j}) THEN m{j} END"
                              for j, name in enumerate(names))
            metrics_sql = f"CASE WHEN has_metrics THEN json_object({pairs}) END"
        else:
            metrics_sql = "NULL"
        view = f"_batch_{id(batch)}"
        self.con.register(view, data)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                "INSERT OR IGNORE INTO evaluations (study, key, trial, status, feasible, config, metrics, error, "
                f"evaluator, elapsed_s) SELECT ?, key, trial, status, feasible, config, {metrics_sql}, error, ?, "
                f"elapsed_s FROM {view}", [study, batch.evaluator])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister(view)
        return n

    def load_columns(self, study: str, metric_names: list[str]) -> tuple[list[str], list[str], np.ndarray, dict]:
        """(keys, statuses, stored feasibility, {metric: float array, NaN where absent}) of a study's
        points in trial order, extracted by DuckDB (no JSON parsed in Python)."""
        import numpy as np

        # json_transform parses each row's JSON once for every metric (json_extract per metric
        # re-parses it per metric: ~10x slower on a 27-metric study); non-numbers become NULL
        if metric_names:
            shape = _sql_string(json.dumps({m: "DOUBLE" for m in metric_names}))
            select = "".join(f', s."{m.replace(chr(34), chr(34) * 2)}" AS m{j}' for j, m in enumerate(metric_names))
            inner = f"SELECT key, status, feasible, trial, json_transform(metrics, '{shape}') AS s FROM evaluations"
        else:
            select, inner = "", "SELECT key, status, feasible, trial FROM evaluations"
        cols = self.con.execute(f"SELECT key, status, feasible{select} FROM ({inner} WHERE study = ?) "
                                "ORDER BY trial, key", [study]).fetchnumpy()
        keys = [str(k) for k in cols["key"]]
        status = [str(v) for v in cols["status"]]
        feasible = np.asarray(cols["feasible"], dtype=bool)
        metrics = {m: np.ma.filled(np.ma.asarray(cols[f"m{j}"], dtype=np.float64), np.nan)
                   for j, m in enumerate(metric_names)}
        return keys, status, feasible, metrics

    def metric_names(self, study: str) -> list[str]:
        """Every metric name stored for a study: those of its first point in their order, then the rest sorted."""
        names = {r[0] for r in self.con.execute(
            "SELECT DISTINCT unnest(json_keys(metrics)) FROM evaluations WHERE study = ?", [study]).fetchall()}
        first = self.con.execute("SELECT metrics FROM evaluations WHERE study = ? AND metrics IS NOT NULL "
                                 "ORDER BY trial, key LIMIT 1", [study]).fetchall()
        head = [k for k in (json.loads(first[0][0]) if first else {}) if k in names]
        return head + sorted(names - set(head))

    def varying_config_keys(self, study: str, names: list[str]) -> list[str]:
        """Those of ``names`` whose configuration value differs between a study's points."""
        if not names:
            return []
        select = ", ".join(f"count(DISTINCT coalesce(CAST(json_extract(config, '$.\"{_sql_string(n)}\"') AS VARCHAR), "
                           "'<absent>'))" for n in names)
        row = self.con.execute(f"SELECT {select} FROM evaluations WHERE study = ?", [study]).fetchall()[0]
        return [n for n, c in zip(names, row) if c and c > 1]

    def load(self, study: str, light: bool = False) -> list[tuple]:
        """(key, trial, status, feasible, config, metrics, error) of every stored point, in trial order;
        ``light``: (key, trial, status, feasible, error), without the JSON."""
        columns = "key, trial, status, feasible, error" if light else \
            "key, trial, status, feasible, config, metrics, error"
        return self.con.execute(f"SELECT {columns} FROM evaluations WHERE study = ? ORDER BY trial, key",
                                [study]).fetchall()

    def configs(self, study: str, keys: list[str]) -> dict[str, tuple[str, str | None]]:
        """{key: (config JSON, metrics JSON)} of the given points."""
        rows = self.con.execute("SELECT key, config, metrics FROM evaluations WHERE study = ? AND key IN "
                                "(SELECT unnest(?))", [study, list(keys)]).fetchall()
        return {k: (c, m) for k, c, m in rows}

    def count(self, study: str) -> int:
        return self.con.execute("SELECT count(*) FROM evaluations WHERE study = ?", [study]).fetchone()[0]

    def set_feasible(self, study: str, keys: list[str], feasible: list[bool]) -> None:
        """Rewrite the feasibility of the given points (after the study's constraints changed)."""
        if not keys:
            return
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(
            "UPDATE evaluations SET feasible = u.f FROM (SELECT unnest(?) AS k, unnest(?) AS f) u "
            "WHERE evaluations.study = ? AND evaluations.key = u.k", [keys, feasible, study])
        self.con.execute("COMMIT")


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def open_store(path: str | Path = DEFAULT_DB, *, write: bool = False, wait: bool = False) -> ResultStore:
    """Open the database: ``write=True`` takes the writer lock (and creates the file); else read-only."""
    duckdb = import_duckdb()
    path = Path(path)
    if not write:
        if not path.exists():
            raise InfersimError(f"{path}: no results database here (run `infersim search` first, or pass --db)")
        try:
            con = duckdb.connect(str(path), read_only=True)
            con.execute("SELECT count(*) FROM studies").fetchall()
            con.execute("SELECT count(*) FROM evaluations").fetchall()
        except duckdb.Error as exc:
            if "lock" in str(exc).lower() and "permission" not in str(exc).lower():
                raise InfersimError(f"{path}: a running infersim search holds the database; try again when it "
                                    "finishes") from None
            raise _open_error(path, exc, "read") from None
        return ResultStore(path, con, None)
    if path.exists() and not os.access(path, os.W_OK):
        raise InfersimError(f"{path}: the results database is read-only (permission denied); make it writable "
                            "or pass --db with another file (reading it with `infersim results` still works)")
    lock = WriterLock(path, wait=wait)
    try:
        con = duckdb.connect(str(path))
        con.execute(_SCHEMA)
    except Exception as exc:
        lock.release()
        if isinstance(exc, duckdb.Error):
            raise _open_error(path, exc, "write") from None
        raise
    return ResultStore(path, con, lock)


def _open_error(path: Path, exc: Exception, mode: str) -> InfersimError:
    """A one-line error for a database DuckDB cannot open, with how to recover."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = first.lower()
    if "permission" in low:
        hint = "check the file's and its directory's permissions, or pass --db with another file"
    elif "catalog" in low or "does not exist" in low:
        hint = ("this DuckDB file is not an infersim results database; pass --db with another file")
    else:
        hint = (f"the file is not a DuckDB database or is damaged; move it aside (mv {path} {path}.bad) and "
                "run the search again: it re-evaluates what was lost")
    return InfersimError(f"{path}: cannot open the results database to {mode}: {first}; {hint}")
