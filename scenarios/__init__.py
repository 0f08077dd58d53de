"""Datasets of the three tasks, transforms, the synthetic default and the Avalanche benchmark."""
