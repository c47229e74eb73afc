"""python -m tools.soak: the soak's orchestrator (tools/soak/run.py)."""

from __future__ import annotations

import sys

from .run import main

sys.exit(main())
