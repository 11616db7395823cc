"""Entry point of ``python -m flaskapp.backup``."""

import sys

from .cli import main

sys.exit(main())
