"""Tiny tokenizers and images for the real-scorer tests: built in the test, nothing downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import torch

WORDS = ["a", "photo", "of", "red", "blue", "green", "circle", "square", "triangle", "left", "right", "the", "and"]


def word_tokenizer(bos: str | None = "<s>", eos: str = "</s>", pad: str = "<pad>", eos_last: bool = False):
    """A word-level fast tokenizer that appends `eos` (and prepends `bos` when given), like CLIP/T5 tokenizers.

    `eos_last`: give `eos` the largest id, as CLIP's BPE does (open_clip pools at the argmax token id)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [pad, "<unk>"] + ([bos] if bos else [])
    order = specials + WORDS + [eos] if eos_last else [pad, eos, "<unk>"] + specials[2:] + WORDS
    vocab = {w: i for i, w in enumerate(order)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    template = f"{bos} $A {eos}" if bos else f"$A {eos}"
    pairs = [(eos, vocab[eos])] + ([(bos, vocab[bos])] if bos else [])
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=pairs)
    kwargs = {"bos_token": bos} if bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, eos_token=eos, unk_token="<unk>", **kwargs)


def bert_tokenizer(directory: str | os.PathLike):
    """A BERT WordPiece tokenizer over WORDS with BLIP's two extra specials, like ImageReward's."""
    from transformers import BertTokenizer

    path = Path(directory) / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tok = BertTokenizer(str(path))
    tok.add_special_tokens({"bos_token": "[DEC]"})
    tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tok


def images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (a low-res pattern upsampled), so resizing is well behaved."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(count, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


PROMPTS = ["a photo of a red circle", "a blue square left of a green triangle", "the red and the blue"]
