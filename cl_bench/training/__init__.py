"""Avalanche template and plugins for the unified multi-task model."""
