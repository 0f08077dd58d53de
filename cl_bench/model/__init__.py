"""The unified one-head model: backbone + neck + ONE head emitting all tasks."""

from cl_bench.model.unified import UnifiedModel, build_model

__all__ = ["UnifiedModel", "build_model"]
