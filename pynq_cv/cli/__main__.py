"""``python -m pynq_cv.cli``: the ``pynq-cv`` command line."""

from pynq_cv.cli import main

raise SystemExit(main())
