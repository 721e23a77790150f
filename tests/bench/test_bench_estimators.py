"""The bench's estimators: the standard error of a mean reward, and paired rewards over the prompts both runs judged."""
import math

from arscale.bench.metrics import summarize
from arscale.bench.paired import paired_difference


def test_mean_reward_se_is_the_standard_error_of_the_mean():
    # SE of a mean = sample SD (n - 1 in the denominator) / sqrt(n); no spec line pins it
    # (metrics.py docstring: "mean reward ... with standard errors"), the textbook estimator does.
    records = [{"reward": r, "cost": {}} for r in (0.0, 1.0, 2.0, 5.0)]
    s = summarize(records, [])
    mean = 2.0
    sd = math.sqrt(sum((r - mean) ** 2 for r in (0.0, 1.0, 2.0, 5.0)) / 3)
    assert math.isclose(s["mean_reward"], mean)
    assert math.isclose(s["mean_reward_se"], sd / 2)
    one = summarize([{"reward": 3.0, "cost": {}}], [])
    assert one["mean_reward"] == 3.0 and math.isnan(one["mean_reward_se"])  # one reward: its spread is unknown


def test_paired_rewards_are_over_the_prompts_both_judged():
    # paired.py:127 docstring: "B - A over the prompts both judged: accuracies, ... and the mean rewards"
    a = {0: {"correct": True, "tag": "t", "prompt": "p0", "reward": 1.0},
         1: {"correct": None, "tag": "t", "prompt": "p1", "reward": 100.0}}  # not judged in A
    b = {0: {"correct": False, "tag": "t", "prompt": "p0", "reward": 3.0},
         1: {"correct": True, "tag": "t", "prompt": "p1", "reward": -100.0}}
    row = paired_difference(a, b)
    assert row["prompts"] == 1
    assert row["reward_a"] == 1.0 and row["reward_b"] == 3.0
