"""`python -m inspector` is the `quant-inspector` console script."""

import sys

from inspector.cli import main

sys.exit(main())
