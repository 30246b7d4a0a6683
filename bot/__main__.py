"""`python -m bot` runs the coach command."""

import sys

from bot.cli import main

sys.exit(main())
