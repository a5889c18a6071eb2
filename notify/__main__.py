"""``python -m notify``: run the notifier until SIGINT/SIGTERM."""
from __future__ import annotations

import sys

from notify.service import main

if __name__ == "__main__":
    sys.exit(main())
