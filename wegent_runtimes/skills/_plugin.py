"""Registers the skills toolkit."""
