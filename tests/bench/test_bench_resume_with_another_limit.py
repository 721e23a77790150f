"""--limit says how much of a suite one call runs, not which suite it is: the manifest hashes the whole suite, so a
run started with --limit 2 resumes with --limit 4, while another suite is refused (README "Large runs"); after a
resume with a lower --limit, prompts done never exceed the total and no tag is noted as left out that the summaries
still average."""
import json

from arscale.cli import main


def _bench(out, *extra):
    return main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--n", "1", "--strategies", "raw",
                 "--scorer", "", "--batch-prompts", "2", "--quiet", "--out", str(out), *extra])


def test_a_run_resumes_with_a_longer_limit(tmp_path, capsys):
    out = tmp_path / "out"
    assert _bench(out, "--limit", "2") == 0
    first = json.loads((out / "manifest.json").read_text())["suite"]
    assert _bench(out, "--limit", "4", "--resume") == 0
    second = json.loads((out / "manifest.json").read_text())["suite"]
    assert first["sha256"] == second["sha256"] and (first["limit"], second["limit"]) == (2, 4)
    assert sorted(int(p.parent.name) for p in (out / "raw" / "n1").glob("*/record.json")) == [0, 1, 2, 3]
    capsys.readouterr()
    assert _bench(out, "--limit", "4", "--resume", "--prompts", "draw:1:6") == 2
    assert "suite: draw:1:5 vs draw:1:6 (other prompts)" in capsys.readouterr().err


def test_merge_after_a_lower_limit_never_counts_more_done_than_total(tmp_path, capsys):
    """After --limit 6 then --resume --limit 4, `bench merge OUT --out OUT` keeps prompts_done <= prompts_total."""
    out = tmp_path / "out"
    assert _bench(out, "--limit", "6") == 0
    assert _bench(out, "--limit", "4", "--resume") == 0
    bench_summary = json.loads((out / "raw" / "n1" / "summary.json").read_text())
    assert (bench_summary["prompts_done"], bench_summary["prompts_total"]) == (6, 6)  # the bench itself: right
    assert main(["bench", "merge", str(out), "--out", str(out)]) == 0
    merged = json.loads((out / "raw" / "n1" / "summary.json").read_text())
    assert merged["prompts_done"] == 6 and merged["prompts_total"] >= merged["prompts_done"]


def test_a_lower_limit_resume_does_not_claim_overall_leaves_out_tags_it_averages(tmp_path, capsys):
    """--limit 6 then --resume --limit 2: every tag the note says is left out is absent from the summary."""
    out = tmp_path / "out"
    assert _bench(out, "--limit", "6") == 0
    capsys.readouterr()
    assert _bench(out, "--limit", "2", "--resume") == 0
    err = capsys.readouterr().err
    tags = json.loads((out / "raw" / "n1" / "summary.json").read_text())["tags"]
    assert len(tags) == 6  # README: a lower --limit keeps the prompts already finished in the summaries
    claimed = [line for line in err.splitlines() if "leaves out the tags" in line]
    assert not any(tag in line for line in claimed for tag in tags), claimed
