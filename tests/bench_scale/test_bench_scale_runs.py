"""End-to-end `arscale bench` subprocesses on a tiny random ShapeWorld-VAR: kill/resume, shards + merge,
two launcher ranks, and manifest mismatches — each compared with one uninterrupted run."""

import json
import random
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
from bench_scale_helpers import SUBPROCESS_TIMEOUT, bench_argv, clean_env, run_bench
from PIL import Image

from arscale.cli import main

TIMING_KEYS = {"total_wall", "overhead", "overhead_fraction", "wall"}
PROMPTS = 12
RUNS = ("raw/n1", "raw/n2", "best-of-n/n1", "best-of-n/n2")


def _untimed(cost: dict) -> dict:
    return {k: v for k, v in cost.items() if k not in TIMING_KEYS and not k.startswith("wall_")}


def snapshot(out):
    """Everything a run's results consist of, minus wall-clock timings and absolute paths."""
    snap = {}
    for run in RUNS:
        root = out / run
        summary = json.loads((root / "summary.json").read_text())
        summary["cost_per_prompt"] = _untimed(summary["cost_per_prompt"])
        records = {}
        for rec_path in sorted(root.glob("*/record.json")):
            rec = json.loads(rec_path.read_text())
            rec["cost"] = _untimed(rec["cost"])
            records[rec_path.parent.name] = rec
        images = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("*/samples/*.png"))}
        results = [{k: v for k, v in json.loads(line).items() if k != "filename"}
                   for line in (root / "results.jsonl").read_text().splitlines()]
        snap[run] = {"summary": summary, "records": records, "images": images, "results": results}
    return snap


@pytest.fixture(scope="module")
def reference(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_bench(tiny_weights, out)
    snap = snapshot(out)
    for run in RUNS:
        assert snap[run]["summary"]["prompts_done"] == PROMPTS and len(snap[run]["images"]) == PROMPTS
    # the tiny model must make prompts differ, or image equality would prove nothing
    assert len(set(snap["raw/n1"]["images"].values())) == PROMPTS
    return out, snap


def _finished_prompts_are_whole(out):
    for run in RUNS:
        for rec in (out / run).glob("*/record.json"):
            json.loads(rec.read_text())
            with Image.open(rec.parent / "samples" / "00000.png") as im:
                assert np.asarray(im).shape[-1] == 3
            json.loads((rec.parent / "metadata.jsonl").read_text())


def test_killed_at_random_points_then_resumed_equals_uninterrupted(tiny_weights, reference, tmp_path):
    rng = random.Random(20261122)
    out = tmp_path / "killed"

    def finished():
        return len(list(out.glob("*/n*/*/record.json")))

    interrupted = 0
    for attempt in range(3):
        before = finished()
        proc = subprocess.Popen(bench_argv(tiny_weights, out, "--resume"), env=clean_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while finished() <= before and proc.poll() is None:  # kill while prompts are being written
            time.sleep(0.005)
        if attempt == 0:
            # the first kill lands at once, right after the first record: a deterministic mid-run interruption, so
            # the resume below always has work left (a random delay could let the run finish first)
            assert proc.poll() is None, f"the first run exited (code {proc.returncode}) before it was killed"
        else:
            time.sleep(rng.uniform(0.0, 0.25))  # later kills at random points
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted += finished() < PROMPTS * len(RUNS)
        if attempt == 0:
            assert 1 <= finished() < PROMPTS * len(RUNS), "the first kill did not land mid-run"
        _finished_prompts_are_whole(out)
    assert interrupted >= 1, "no kill landed before the run finished; the test proved nothing"
    # a crash between an image and its record: the half-finished prompt must not count
    victim = out / "raw" / "n2" / "00003"
    if victim.exists():
        (victim / "record.json").unlink(missing_ok=True)
        png = victim / "samples" / "00000.png"
        if png.exists():
            png.write_bytes(png.read_bytes()[:20])
    run_bench(tiny_weights, out, "--resume")
    assert snapshot(out) == reference[1]


def test_two_shards_merged_equal_one_run(tiny_weights, reference, tmp_path, capsys):
    shards = [tmp_path / "shard0", tmp_path / "shard1"]
    procs = [subprocess.Popen(bench_argv(tiny_weights, s, "--num-shards", "2", "--shard-index", str(i)),
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, s in enumerate(shards)]
    for p in procs:
        _, err = p.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert p.returncode == 0, err[-2000:]
    for i, s in enumerate(shards):
        assert (s / f"manifest.shard-{i}-of-2.json").is_file() and not (s / "raw" / "n1" / "summary.json").exists()
        done = sorted(int(r.parent.name) for r in (s / "raw" / "n1").glob("*/record.json"))
        assert done == [k for k in range(PROMPTS) if (k // 2) % 2 == i]  # whole blocks of --batch-prompts 2
    merged = tmp_path / "merged"
    for _ in range(2):  # merging again changes nothing (in process: the shards above were the processes to test)
        assert main(["bench", "merge", str(shards[0]), str(shards[1]), "--out", str(merged)]) == 0
        assert snapshot(merged) == reference[1]
    manifest = json.loads((merged / "manifest.json").read_text())
    assert len(manifest["shard"]["merged_from"]) == 2 and (merged / "table.md").is_file()

    other = tmp_path / "other-seed"
    capsys.readouterr()
    assert main(bench_argv(tiny_weights, other, "--seed", "4", "--num-shards", "2", "--shard-index", "1")[3:]) == 0
    assert main(["bench", "merge", str(shards[0]), str(other), "--out", str(tmp_path / "bad")]) == 2
    assert "seed: 3 vs 4" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_launcher_ranks_equal_one_process(tiny_weights, reference, tmp_path):
    out = tmp_path / "ranks"
    port = str(_free_port())
    procs = [subprocess.Popen(bench_argv(tiny_weights, out),
                              env=clean_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                            MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert p.returncode == 0, err[-2000:]
    assert snapshot(out) == reference[1]
    assert json.loads((out / "manifest.json").read_text())["shard"]["world_size"] == 2


def test_hand_started_ranks_in_any_order_merge_to_one_run(tiny_weights, reference, tmp_path):
    out = tmp_path / "hand"
    # rank 1 first and to the end: its label folders are there, but no manifest, when rank 0 starts
    run_bench(tiny_weights, out, env=clean_env(RANK="1", WORLD_SIZE="2"))
    assert not list(out.glob("manifest*.json")) and (out / "raw").is_dir()
    proc = run_bench(tiny_weights, out, env=clean_env(RANK="0", WORLD_SIZE="2"))
    assert "ranks were not synchronised" in proc.stdout
    assert main(["bench", "merge", str(out), "--out", str(out)]) == 0
    assert snapshot(out) == reference[1]


def test_resuming_with_other_settings_is_refused(tiny_weights, reference, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    capsys.readouterr()
    # in process: `main`'s return value is the exit status (the subprocess runs above test the process itself)
    assert main(bench_argv(tiny_weights, out, "--resume", "--seed", "4")[3:]) == 2
    err = capsys.readouterr().err
    assert "seed: 3 vs 4" in err and "Traceback" not in err
    assert main(bench_argv(tiny_weights, out, "--resume", "--config", 'best-of-n={"reward": "x"}')[3:]) == 2
    assert "strategy best-of-n" in capsys.readouterr().err
    assert snapshot(out) == reference[1]  # nothing was touched
