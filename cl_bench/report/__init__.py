"""Reports over finished runs (tables, figures, report.md) and the export of one run's model.

``collect`` reads a results folder, ``tables`` aggregates it over seeds,
``plots`` draws the figures, ``markdown`` writes report.md, ``build`` ties them
together; ``export`` picks a run and copies its weights with a model card.
"""
