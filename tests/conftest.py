from __future__ import annotations

import sys
from pathlib import Path

# the test helpers (servers.py) import as a plain module
sys.path.insert(0, str(Path(__file__).parent))

# Locust monkey-patches the standard library with gevent when imported; the in-process test
# servers (gevent) rely on it, so it happens first, before any test module is imported.
import locust  # noqa: F401
