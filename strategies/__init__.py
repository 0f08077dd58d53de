"""Continual-learning strategies, one module each, registered by name."""

from strategies import agem, der, ewc, ewc_replay, joint, lwf, mas, merge, naive, replay, si, single_task  # noqa: F401
from strategies.registry import STRATEGIES, NoOptions, StrategyContext, StrategySpec, get_strategy, register

__all__ = ["STRATEGIES", "NoOptions", "StrategyContext", "StrategySpec", "get_strategy", "register"]
