"""``python -m videodiff.cli ...`` is ``videodiff ...``."""

import sys

from .main import main

sys.exit(main())
