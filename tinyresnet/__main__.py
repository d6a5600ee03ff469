"""``python -m tinyresnet``: the same as the ``tinyresnet`` command."""
from .cli import main

raise SystemExit(main())
