"""cl_bench: a continual-learning benchmark harness for multi-task vision."""

__version__ = "0.2.0"
