"""wegent: AI agent teams in Kubernetes-style YAML.

The one import for applications: `import wegent` gives the public API of `wegent_core` (resources, loading,
resolution, stores, plugins). The runtimes, SQL storage and the server plug in underneath through entry points.
"""

from wegent_core import *  # noqa: F403
from wegent_core import __all__ as __all__
