"""Continual-learning strategies, one module each, registered by name."""

from strategies import ewc, ewc_replay, joint, lwf, naive, replay, single_task  # noqa: F401  (they register)
from strategies.registry import STRATEGIES, NoOptions, StrategyContext, StrategySpec, get_strategy, register

__all__ = ["STRATEGIES", "NoOptions", "StrategyContext", "StrategySpec", "get_strategy", "register"]
