"""Generic training pieces every strategy shares: the multi-task template and
criterion, the learning-rate schedule, the BatchNorm policy and the loss log."""
