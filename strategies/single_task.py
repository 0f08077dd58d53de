"""Each task alone from the same initial weights: the per-task reference."""

from cl_bench.schedules import SINGLE_TASK
from strategies.registry import NoOptions, register


@register("single_task", NoOptions, "each task alone from the same initial weights (per-task reference)",
          schedule=SINGLE_TASK)
def plugins(options: NoOptions, ctx) -> list:
    return []
