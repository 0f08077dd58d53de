"""EWC and replay together."""

from dataclasses import dataclass, field

from strategies.ewc import EWCOptions, ewc_plugins
from strategies.registry import register
from strategies.replay import ReplayOptions, replay_plugins


@dataclass
class EWCReplayOptions:
    ewc: EWCOptions = field(default_factory=EWCOptions)
    replay: ReplayOptions = field(default_factory=ReplayOptions)


@register("ewc_replay", EWCReplayOptions, "EWC penalty plus replay of earlier tasks")
def plugins(options: EWCReplayOptions, ctx) -> list:
    return ewc_plugins(options.ewc) + replay_plugins(options.replay, ctx.seed)
