"""What grows badly at the real models' sizes (vocabulary, token count, width), shown at
test sizes by a scaling property or a count that does not depend on the size."""

import pytest
import torch
from tiny_families import BrightnessScorer, tiny_infinity


def _kv_peak_and_need(gen, strategy, n):
    """(largest KV-cache allocation over the run, largest that the rows alive at any scale fill), in bytes."""
    peaks, step = [], gen.step

    def spy(traj, **kwargs):
        out = step(traj, **kwargs)
        c = traj.cache
        per_position = sum(k.shape[1] * k.shape[3] * k.element_size() * 2 for k in c.keys if k is not None)
        peaks.append((c.allocated_bytes(), len(traj) * traj.halves * c.length * per_position))
        return out

    gen.step = spy
    with torch.no_grad():
        strategy.run(gen, ["a cat"], n, seed=0, scorer=BrightnessScorer())
    return max(p for p, _ in peaks), max(live for _, live in peaks)


def test_tts_var_kv_cache_follows_the_rows_alive_not_the_rows_that_started():
    from arscale.search.tts_var import TTSVAR, TTSVARConfig

    # Infinity's 0.06M schedule (7 scales, 521 positions): 8 rows start, 1 is left for the 256-token last scale. On
    # Infinity-2B at 1M (32 layers, width 2048, 10,521 positions, both CFG halves) the whole-sequence buffers of the 8
    # starting rows are 8 x 2 x 10,521 x 32 x 2 x 2048 x 4 B = 88 GB in fp32, where the rows alive at any scale fill
    # at most 11 GB (the last scale's one row)
    gen = tiny_infinity()
    strategy = TTSVAR(TTSVARConfig(record_previews=False), feature_scorer=BrightnessScorer())
    peak, need = _kv_peak_and_need(gen, strategy, 8)
    assert peak <= 2 * need, f"KV cache peaked at {peak / need:.1f}x the bytes the live rows fill"


@pytest.mark.parametrize("name", ["raw", "scaling-ar"])
def test_decode_flops_are_counted_without_decoding_an_image(name):
    from tiny_families import tiny_llamagen

    from arscale.search.base import make_strategy

    gen = tiny_llamagen()
    devices = []  # one entry per decoder forward: the device its input lives on
    gen.tokenizer.decoder.register_forward_pre_hook(lambda _module, inputs: devices.append(inputs[0].device.type))
    config = {"record_previews": False} if name == "scaling-ar" else {}
    with torch.no_grad():
        result = make_strategy(name, config).run(gen, [1], 2, seed=0)
    assert result.cost.decode_flops > 0
    # the final images only (one batched decode); at LlamaGen-B's 256 px on 2 CPU threads the second, real decode
    # took 1.8-5 s of a 19-56 s run, billed as selection overhead
    assert devices.count("cpu") == 1, devices
