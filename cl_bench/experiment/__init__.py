"""Running experiments: one run (assemble, resume, train stages, finish), its identity, checkpoints and record."""
