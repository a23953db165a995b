"""``python -m recommender``: the ``recommender`` command."""

import sys

from recommender.cli import main

sys.exit(main())
