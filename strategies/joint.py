"""Joint training on all tasks at once: the upper bound (not continual)."""

from cl_bench.schedules import JOINT
from strategies.registry import NoOptions, register


@register("joint", NoOptions, "train on all tasks at once (upper bound, not continual)", schedule=JOINT)
def plugins(options: NoOptions, ctx) -> list:
    return []
