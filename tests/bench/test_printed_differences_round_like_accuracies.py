"""Printed paired differences round as `percent` rounds accuracies: by the exact value, not by the float noise
of a sum over tags (13.75 points prints +13.8 like an accuracy of 13.75 %, never +13.7)."""

from arscale.bench.paired import format_comparison, paired_difference
from arscale.bench.table import percent, points


def _records(sizes: list[int], fixed_in: set[int]) -> tuple[dict, dict]:
    """A wrong everywhere; B right on the first prompt of each tag in `fixed_in` (tags 0..len(sizes)-1)."""
    a, b, i = {}, {}, 0
    for tag, n in enumerate(sizes):
        for j in range(n):
            a[i] = {"prompt": f"p{i}", "tag": f"t{tag}", "correct": False}
            b[i] = {"prompt": f"p{i}", "tag": f"t{tag}", "correct": tag in fixed_in and j == 0}
            i += 1
    return a, b


def test_a_difference_of_exactly_thirteen_point_seven_five_prints_as_its_accuracy_would():
    # six tags of 2, 2, 2, 2, 5 and 8 prompts, one prompt fixed in each of the last three:
    # (1/2 + 1/5 + 1/8) / 6 = 0.1375 exactly, which float sums to 0.13749999999999998
    a, b = _records([2, 2, 2, 2, 5, 8], {3, 4, 5})
    row = paired_difference(a, b)
    assert row["diff"] != 0.1375 and abs(row["diff"] - 0.1375) < 1e-15  # the noise this is about
    assert percent(0.1375) == "13.8"  # the tie goes to the even digit
    line = format_comparison([{"label": "run", "n": 1, "against": "raw N=1", **row}]).splitlines()[2]
    assert "| 0.0 | 13.8 | +13.8 ± " in line  # B's accuracy is the same 13.75 %, and prints the same


def test_points_ignore_noise_below_nine_places_in_either_direction():
    assert points(0.1375 * (1 + 1e-14), "+.1f") == points(0.1375 * (1 - 1e-14), "+.1f") == "+13.8"
    assert points(-0.1375 * (1 - 1e-14), "+.1f") == "-13.8"
    assert points(0.000123456, ".2f") == "0.01"
