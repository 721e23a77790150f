"""Puts this folder on the import path, so every test folder can use `tiny_shapeworld_var` and `tiny_families`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
