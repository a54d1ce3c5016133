"""infersim: a hardware-software co-design simulator and explorer for ML inference.

The flow, one package per stage (dependencies point one way):

    hardware, models  ->  perf  ->  serving  ->  search  ->  report  ->  cli
"""

__version__ = "0.1.0"
