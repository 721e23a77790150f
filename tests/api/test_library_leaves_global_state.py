"""arscale as a library inside someone else's program: what a command run through `arscale.cli.main([...])` or a
plotting helper leaves in the caller's process. `main` already gives back SIGTERM and `--scorer-weights` when it
returns ("must not outlive it in a process that runs several (tests, notebooks calling `arscale.cli.main`)");
the caller's torch thread count, distributed process group and matplotlib backend must stay as well."""

import matplotlib
import pytest
import torch
import torch.distributed as dist

from arscale.bench.plots import plot_all
from arscale.bench.sharding import ProcessGroup, Shard
from arscale.cli import main

PROMPT = "a photo of a red circle"


@pytest.fixture
def caller_threads():
    """The caller runs torch on 2 threads (not what `--threads 1` asks); put back whatever was there before."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


@pytest.fixture
def caller_backend():
    """The caller draws with its own matplotlib backend (`pdf` here; a notebook's inline one, a desktop's window
    toolkit elsewhere); the test's previous backend comes back afterwards."""
    before = matplotlib.get_backend()
    matplotlib.use("pdf")
    yield "pdf"
    matplotlib.use(before)


def test_main_bench_that_fails_gives_back_the_callers_thread_count(caller_threads, tmp_path):
    """A bench refused after it set `--threads 1` leaves the caller's torch thread count as it was."""
    rc = main(["bench", "--model", "no-such-model", "--prompts", "draw:1:5", "--threads", "1", "--quiet",
               "--out", str(tmp_path / "out")])
    assert rc == 2
    assert torch.get_num_threads() == caller_threads


def test_main_generate_gives_back_the_callers_thread_count(caller_threads, tmp_path):
    """A finished `generate --threads 1` leaves the caller's torch thread count as it was."""
    torch.manual_seed(0)
    assert main(["generate", PROMPT, "--n", "1", "--threads", "1", "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "grid.png").is_file()
    assert torch.get_num_threads() == caller_threads


def test_bench_process_group_leaves_the_callers_group_initialised(tmp_path):
    """A bench rank inside a caller's initialised process group uses it for the barrier and leaves it alive."""
    dist.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(), rank=0, world_size=1)
    try:
        group = ProcessGroup(Shard(count=2, index=0, world_size=2, rank=0))
        assert group.active
        group.barrier()
        group.close()
        assert dist.is_initialized()  # the caller's next collective still has its group
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_generate_search_tree_keeps_the_callers_matplotlib_backend(caller_backend, tmp_path):
    """`generate --strategy tts-var` writes search_tree.png and leaves the caller's matplotlib backend alone."""
    assert main(["generate", PROMPT, "--strategy", "tts-var", "--n", "2", "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "search_tree.png").stat().st_size > 1000
    assert matplotlib.get_backend() == caller_backend


def _summary(label, n, overall, flops):
    return {"label": label, "strategy": label, "n": n, "overall": overall, "overall_se": 0.05,
            "model": "shapeworld-var", "prompts_done": 12, "prompts_total": 12,
            "tags": {"single_object": {"accuracy": overall, "total": 12}},
            "cost_per_prompt": {"flops": flops, "total_wall": 0.04 * n}}


def test_bench_figures_keep_the_callers_matplotlib_backend(caller_backend, tmp_path):
    """`plot_all` (bench, bench merge) writes both figures, N labels included, under the caller's backend."""
    summaries = [_summary("raw", 1, 0.5, 1e9),
                 *[_summary("best-of-n", n, 0.5 + 0.05 * n, 1e9 * n) for n in (2, 4)]]
    paths = plot_all(summaries, tmp_path, manifest={"model": {"id": "shapeworld-var"}})
    assert [p.name for p in paths] == ["score_vs_n.png", "score_vs_compute.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert matplotlib.get_backend() == caller_backend
