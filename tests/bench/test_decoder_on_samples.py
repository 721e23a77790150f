"""benchmarks/decoder_on_samples.py: decoders compared on the same sampled latents."""

import json
import math
import sys

import pytest

from arscale.generators.next_scale.shapeworld import WEIGHTS_DIR


def test_paired_difference_is_tag_averaged_with_flips_counted(benchmark_script):
    m = benchmark_script("decoder_on_samples")
    records = [{"tag": "a"}] * 4 + [{"tag": "b"}] * 2
    base = [True, False, False, True, True, False]
    other = [True, True, True, False, True, True]
    s = m.summary(other, records)
    assert math.isclose(s["a"], 0.75) and math.isclose(s["b"], 1.0) and math.isclose(s["overall"], 0.875)
    d = m.paired(base, other, records)
    assert d["fixed"] == 3 and d["broken"] == 1
    assert math.isclose(d["diff"], ((1 + 1 - 1) / 4 + 1 / 2) / 2)
    var_a = sum((x - 0.25) ** 2 for x in (0, 1, 1, -1)) / 3 / 4
    var_b = sum((x - 0.5) ** 2 for x in (0, 1)) / 1 / 2
    assert math.isclose(d["diff_se"], math.sqrt(var_a + var_b) / 2)


def test_the_public_suite_seed_is_refused(benchmark_script):
    from arscale.shapeworld.suite import PUBLIC_SUITE_SEED

    with pytest.raises(SystemExit, match="public"):
        benchmark_script("decoder_on_samples").suite(2, [PUBLIC_SUITE_SEED], None)


def test_same_decoder_twice_gives_identical_rows(tmp_path, monkeypatch, capsys, benchmark_script):
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["decoder_on_samples.py", "--decoders", str(WEIGHTS_DIR), str(WEIGHTS_DIR),
                                      "--per-tag", "2", "--suite-seeds", "11", "--json", str(out)])
    benchmark_script("decoder_on_samples").main()
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 and rows[0]["raw"] == rows[1]["raw"] and rows[0]["recon"] == rows[1]["recon"]
    assert rows[1]["vs_first"] == {"diff": 0.0, "diff_se": 0.0, "fixed": 0, "broken": 0}
    assert "| decoder |" in capsys.readouterr().out
