"""ShapeWorld v1: the embedded GenEval-shaped test world (pure numpy + PIL; no torch).

See SHAPEWORLD.md for the contract. Quick use::

    rng = np.random.default_rng(0)
    meta = metadata_from_prompt("a photo of a red circle and a blue square")
    image = render(sample_scene(meta, rng))        # uint8 [64, 64, 3]
    verdict = evaluate(image, meta)                # Verdict(correct=True, reason="", detections=[...])
"""

from arscale.shapeworld.evaluate import (
    Detection,
    Verdict,
    detect,
    evaluate,
    judge,
    relative_position,
)
from arscale.shapeworld.grammar import (
    BACKGROUND,
    CLASSES,
    COLORS,
    IMAGE_SIZE,
    RELATIONS,
    TAGS,
    VOCABULARY,
    GrammarError,
    metadata_from_prompt,
    prompt_from_metadata,
    random_metadata,
)
from arscale.shapeworld.render import render, render_batch
from arscale.shapeworld.scene import Scene, SceneObject, sample_scene
from arscale.shapeworld.suite import PUBLIC_SUITE, build_suite, load_suite, write_suite

__all__ = [
    "BACKGROUND",
    "CLASSES",
    "COLORS",
    "IMAGE_SIZE",
    "PUBLIC_SUITE",
    "RELATIONS",
    "TAGS",
    "VOCABULARY",
    "Detection",
    "GrammarError",
    "Scene",
    "SceneObject",
    "Verdict",
    "build_suite",
    "detect",
    "evaluate",
    "judge",
    "load_suite",
    "metadata_from_prompt",
    "prompt_from_metadata",
    "random_metadata",
    "relative_position",
    "render",
    "render_batch",
    "sample_scene",
    "write_suite",
]
