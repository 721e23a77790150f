"""What a bench reports after a resume with a lower --limit: prompts done never above the total, and no false note."""
import json

from arscale.cli import main


def _bench(out, *extra):
    return main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--n", "1", "--strategies", "raw",
                 "--scorer", "", "--batch-prompts", "2", "--quiet", "--out", str(out), *extra])


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
