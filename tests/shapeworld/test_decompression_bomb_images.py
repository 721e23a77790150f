"""An image whose header trips PIL's decompression-bomb guard."""

import struct
import zlib

import numpy as np
import pytest

from arscale.bench import geneval_layout as gl
from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.shapeworld import metadata_from_prompt, render, sample_scene


def _png_header_only(side: int) -> bytes:
    """A 100-byte PNG whose IHDR claims side x side RGB pixels (PIL checks the size on open, before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_read_image_of_a_decompression_bomb_header_is_an_arscale_error(tmp_path):
    """A PNG that claims 20000 x 20000 pixels is an ArscaleError naming the file, not PIL's own exception."""
    path = tmp_path / "00000.png"
    path.write_bytes(_png_header_only(20000))
    with pytest.raises(ArscaleError, match="00000.png: unreadable image"):
        gl.read_image(path)


def test_eval_shapeworld_of_a_decompression_bomb_sample_is_one_line(tmp_path, capsys):
    """`arscale eval shapeworld` on a folder with such a sample exits 2 with one `arscale: error:` line."""
    md = metadata_from_prompt("a photo of a red circle")
    gl.write_prompt(tmp_path, 0, md, [render(sample_scene(md, np.random.default_rng(0)))])
    (tmp_path / "00000" / "samples" / "00000.png").write_bytes(_png_header_only(20000))
    assert main(["eval", "shapeworld", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("arscale: error: "), err
    assert "00000.png: unreadable image" in lines[0]
