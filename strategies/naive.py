"""Naive fine-tuning: each task in turn, nothing against forgetting (the lower bound)."""

from strategies.registry import NoOptions, register


@register("naive", NoOptions, "fine-tune on each task in turn (lower bound)", composable=False)
def plugins(options: NoOptions, ctx) -> list:
    return []
