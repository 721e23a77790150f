"""benchmarks/scene_stream.py: the stream's throughput with and without worker processes."""

import pytest


def test_table_has_a_row_per_worker_count_and_the_batches_agree(benchmark_script, capsys):
    m = benchmark_script("scene_stream")
    assert m.main(["--batch-size", "4", "--batches", "3", "--workers", "0", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "×" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "2"]
    assert all(row.split("|")[4].strip() == "yes" for row in rows)
    assert rows[0].split("|")[3].strip() == "1.00×"


def test_nonpositive_sizes_are_refused(benchmark_script, capsys):
    # argparse exits (code 2) on any bad argument; the message says it was these checks that refused
    m = benchmark_script("scene_stream")
    with pytest.raises(SystemExit):
        m.main(["--batches", "0"])
    assert "--batches and --batch-size must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        m.main(["--workers", "0", "-1"])
    assert "--workers and --step-ms must be >= 0" in capsys.readouterr().err
