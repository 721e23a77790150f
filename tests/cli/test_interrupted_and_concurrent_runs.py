"""Interrupted and concurrent runs: a Ctrl-C while the command starts up, two benches of other
strategies in one --out at once, a trainer's exit status after Ctrl-C, and a second Ctrl-C during a save."""

import json

from arscale.cli import main

QUICK = ["bench", "--prompts", "draw:1:5", "--limit", "1", "--n", "1", "--scorer", "", "--quiet"]


def test_a_ctrl_c_while_the_commands_load_is_one_line_and_130(monkeypatch, capsys):
    """A Ctrl-C during the seconds `arscale` spends importing its commands is answered as one later would be."""
    from arscale import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        code = main(["bench", "--out", "never-made"])
    except KeyboardInterrupt:  # what reaches the user as a traceback wall
        code = "traceback"
    assert code == 130
    assert capsys.readouterr().err.strip() == "arscale: interrupted"


def test_a_bench_that_ends_last_keeps_the_labels_another_bench_added_meanwhile(tmp_path, monkeypatch):
    """Two benches of other strategies into one --out at once: the manifest keeps both labels, and merge works."""
    from arscale.bench.runner import Bench

    out = tmp_path / "b"
    run, started = Bench.run, []

    def with_another_bench_meanwhile(self, *args, **kwargs):
        if not started:  # the first bench (raw) is running: a second one (best-of-n) starts and ends meanwhile
            started.append(True)
            assert main([*QUICK, "--strategies", "best-of-n", "--out", str(out)]) == 0
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Bench, "run", with_another_bench_meanwhile)
    assert main([*QUICK, "--strategies", "raw", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["strategies"]) == ["best-of-n", "raw"]
    assert main(["bench", "merge", str(out), "--out", str(tmp_path / "merged")]) == 0


def test_a_trainer_stopped_by_ctrl_c_saves_and_exits_130(tmp_path, monkeypatch, capsys):
    """Ctrl-C mid-training saves the state after the step, and the exit status says the run did not finish."""
    import signal

    import torch

    from arscale.train import scene_stream

    torch.manual_seed(0)
    sample, calls = scene_stream.ShapeWorldStream.sample, []

    def sample_then_ctrl_c(self, n):
        calls.append(n)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)  # handled by the trainer: it finishes the step, then saves
        return sample(self, n)

    monkeypatch.setattr(scene_stream.ShapeWorldStream, "sample", sample_then_ctrl_c)
    out = tmp_path / "tok"
    code = main(["train", "shapeworld-tokenizer", "--steps", "40", "--batch-size", "2", "--out", str(out)])
    state = json.loads((out / "train_state" / "shapeworld-tokenizer" / "state.json").read_text(encoding="utf-8"))
    assert state["step"] == 2  # saved after the step it was in
    assert code == 130 and capsys.readouterr().err.strip().endswith("arscale: interrupted")


def test_a_second_ctrl_c_during_the_save_leaves_the_last_checkpoint_whole(tmp_path, monkeypatch):
    """A second Ctrl-C during a save leaves the training state one whole checkpoint, not a mix of two."""
    import signal

    import torch

    from arscale.train import checkpoint, scene_stream

    torch.manual_seed(0)
    sample, calls = scene_stream.ShapeWorldStream.sample, []

    def sample_then_ctrl_c(self, n):
        calls.append(n)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)  # the first Ctrl-C: the trainer saves after this step
        return sample(self, n)

    monkeypatch.setattr(scene_stream.ShapeWorldStream, "sample", sample_then_ctrl_c)
    out = tmp_path / "tok"
    argv = ["train", "shapeworld-tokenizer", "--steps", "6", "--batch-size", "2", "--out", str(out)]
    main(argv)  # stopped and saved at step 2
    state = out / "train_state" / "shapeworld-tokenizer"
    before = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    assert json.loads(before["state.json"])["step"] == 2

    save_optimizer = checkpoint.save_optimizer

    def second_ctrl_c(*args, **kwargs):  # lands while the next save writes its files
        signal.raise_signal(signal.SIGINT)
        return save_optimizer(*args, **kwargs)

    calls.clear()
    monkeypatch.setattr(checkpoint, "save_optimizer", second_ctrl_c)
    try:
        main(argv)  # resumes at 2, the first Ctrl-C in step 4, the second one during its save
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(checkpoint, "save_optimizer", save_optimizer)
    after = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    step = json.loads(after["state.json"])["step"]
    changed = sorted(name for name in before if after.get(name) != before[name])
    whole = changed == [] or (step == 4 and changed == sorted(before))
    assert whole, f"state.json says step {step}, but {changed} changed"
