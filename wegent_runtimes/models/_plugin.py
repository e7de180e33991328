"""Registers the model providers."""
