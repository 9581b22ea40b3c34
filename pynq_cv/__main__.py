"""``python -m pynq_cv``: the ``pynq-cv`` command line."""

from .cli import main

raise SystemExit(main())
