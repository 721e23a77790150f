"""The sampler's positions cover the whole allowed range, both ends included (margin 2 px)."""

from __future__ import annotations

import numpy as np

from arscale.shapeworld import sample_scene


def test_positions_reach_both_margins_on_both_axes():
    meta = {"include": [{"class": "square", "count": 1}]}
    objs = [sample_scene(meta, np.random.default_rng([7, i])).objects[0] for i in range(600)]
    assert min(o.x for o in objs) == 2 and min(o.y for o in objs) == 2
    assert max(o.x + o.size for o in objs) == 62
    assert max(o.y + o.size for o in objs) == 62
