"""Suite-wide settings."""

from hypothesis import settings

# CI machines are shared and slow at times: a property test must fail on behaviour, never on wall time.
settings.register_profile("wegent", deadline=None)
settings.load_profile("wegent")
