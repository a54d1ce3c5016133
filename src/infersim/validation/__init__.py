"""End-to-end validation: predicted vs published whole-system throughputs (``infersim validate``).

* :mod:`.table` loads the bundled table of measured system throughputs
  (``data/system_throughputs.csv``, MLPerf Inference results with their exact
  configurations and sources) and the datasets' length distributions (``data/datasets.yaml``).
* :mod:`.predict` turns a row into a serving scenario and predicts it with the cost model
  and the serving simulator (Offline: all requests at t = 0; Server: the highest Poisson
  rate meeting the row's latency constraints).
* :mod:`.report` scores the predictions: per row, and MdAPE / p90 / signed bias grouped
  by device, model, precision, shape and scenario.
"""

from .predict import RowPrediction, RunSize, predict_row, scenario_for
from .table import SystemMeasurement, default_table_path, load_datasets, load_table, select

__all__ = [
    "RowPrediction",
    "RunSize",
    "SystemMeasurement",
    "default_table_path",
    "load_datasets",
    "load_table",
    "predict_row",
    "scenario_for",
    "select",
]
