"""Joint training on all tasks at once: the upper bound (not continual)."""

from strategies import NoOptions, register


@register("joint", NoOptions, "train on all tasks at once (upper bound, not continual)", schedule="joint")
def plugins(options: NoOptions, ctx) -> list:
    return []
