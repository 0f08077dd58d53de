"""Each task alone from the same initial weights: the per-task reference."""

from strategies import NoOptions, register


@register("single_task", NoOptions, "each task alone from the same initial weights (per-task reference)",
          schedule="single_task")
def plugins(options: NoOptions, ctx) -> list:
    return []
