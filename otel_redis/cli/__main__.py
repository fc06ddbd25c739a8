"""``python -m otel_redis.cli``: the ``otel-redis`` command (the justfile runs it this way through dev.py)."""

import sys

from . import main

sys.exit(main())
