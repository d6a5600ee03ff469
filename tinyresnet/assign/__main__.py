"""``python -m tinyresnet.assign build|check|grade ...``"""
import sys

from .cli import main

sys.exit(main())
