import pytest
import torch

from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.generators.next_token.transformer import Transformer, TransformerConfig, rope_2d_table


def test_tokenizer_round_trip_codes():
    torch.manual_seed(0)
    tok = VQTokenizer(VQConfig(image_size=32, codebook_size=16, ch=8, z_channels=16)).eval()
    images = torch.rand(3, 3, 32, 32)
    codes = tok.encode(images)
    assert codes.shape == (3, 16) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    # decoding then re-encoding the codebook's own latents is a fixed point of quantisation
    g = tok.grid
    zq = tok.normalized_codebook()[codes.view(-1, g, g)].permute(0, 3, 1, 2)
    again, _ = tok.quantize(zq)
    assert torch.equal(again.flatten(1), codes)
    out = tok.decode_codes(codes)
    assert out.shape == (3, 3, 32, 32) and out.min() >= 0 and out.max() <= 1


def test_llamagen_parameter_names():
    t = Transformer(TransformerConfig(dim=32, n_layer=2, n_head=2, vocab_size=16, grid=4, cls_token_num=3,
                                      caption_dim=8, multiple_of=32))
    names = set(t.state_dict())
    for key in ["tok_embeddings.weight", "layers.1.attention.wqkv.weight", "layers.1.attention.wo.weight",
                "layers.0.feed_forward.w1.weight", "layers.0.feed_forward.w2.weight",
                "layers.0.feed_forward.w3.weight", "layers.0.attention_norm.weight", "layers.0.ffn_norm.weight",
                "norm.weight", "output.weight", "cls_embedding.cap_proj.fc1.weight",
                "cls_embedding.cap_proj.fc2.weight"]:
        assert key in names
    assert t.config.ffn_hidden == 96  # find_multiple(int(2 * 4 * 32 / 3), 32)


def test_rope_table_2d_and_prefix_modes():
    c = TransformerConfig(dim=32, n_head=2, grid=4, cls_token_num=3)
    table = rope_2d_table(c)
    assert table.shape == (3 + 16, 8, 2)
    assert torch.all(table[:3, :, 0] == 1) and torch.all(table[:3, :, 1] == 0)  # identity rotation
    # token (row 1, col 2): the first half of the pairs follows the row, the second half the column
    row1col2, row1col0 = table[3 + 6], table[3 + 4]
    assert torch.allclose(row1col2[:4], row1col0[:4]) and not torch.allclose(row1col2[4:], row1col0[4:])
    zero = rope_2d_table(TransformerConfig(dim=32, n_head=2, grid=4, cls_token_num=3, prefix_rope="zero"))
    assert torch.all(zero[:3] == 0)


def test_invalid_transformer_config_rejected():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(dim=30, n_head=4)
    with pytest.raises(ValueError, match="prefix_rope"):
        TransformerConfig(prefix_rope="rotary")
