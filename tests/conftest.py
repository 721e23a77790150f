"""Puts this folder on the import path, so every test folder can use `tiny_shapeworld_var`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
