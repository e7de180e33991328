"""Registers the ClaudeCode runtime."""
