"""Nothing may download during tests: the hub is switched off before transformers/huggingface_hub load."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
