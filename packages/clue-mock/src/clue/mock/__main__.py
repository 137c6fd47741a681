"""``python -m clue.mock gen TARGET...``: the same as the ``cmg`` console script."""

from __future__ import annotations

import sys

from clue.mock._cli import main

sys.exit(main())
