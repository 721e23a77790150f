"""--limit says how much of a suite one call runs, not which suite it is: the manifest hashes the whole suite, so a
run started with --limit 2 resumes with --limit 4, while another suite is refused (README "Large runs")."""
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
