"""EWC and replay together: another name for ``ewc+replay``."""

from strategies import ewc, replay  # noqa: F401  (registered before the alias is)
from strategies.registry import register_alias

register_alias("ewc_replay", "ewc+replay", "EWC penalty plus replay of earlier tasks")
