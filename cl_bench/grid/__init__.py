"""Grids of runs on Ray: strategies x seeds x orders x settings, one Ray task per run.

``plan`` expands a grid into resolved run configs and validates them before any
work; ``worker`` is the Ray task that trains one run (``run_experiment``);
``board`` is the actor the tasks report to; ``status`` is a run's state as the
driver tracks it and ``progress`` shows it;
``driver`` starts or joins Ray, submits, retries, brings results home and stops
cleanly on Ctrl-C. ``tuning`` is a documented search: one run per YAML setting, one table of outcomes.
"""
