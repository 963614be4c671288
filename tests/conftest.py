from __future__ import annotations

import sys
from pathlib import Path

# the test helpers (servers.py) import as a plain module
sys.path.insert(0, str(Path(__file__).parent))
