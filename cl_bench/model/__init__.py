"""The unified one-head model: backbone + neck + ONE head emitting all tasks, or your own
(``model.factory``) under the same forward contract (``cl_bench/model/outputs.py``)."""

from cl_bench.model.factory import FactoryModel
from cl_bench.model.outputs import HeadLayout, TaskHead, TaskOutputModel
from cl_bench.model.unified import UnifiedModel, build_model

__all__ = ["FactoryModel", "HeadLayout", "TaskHead", "TaskOutputModel", "UnifiedModel", "build_model"]
