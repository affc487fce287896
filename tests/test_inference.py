"""The shipped models, run for real: integrity, and behaviour on rendered garments."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from PIL import Image

from devstack.demo.pictures import encode, product_picture
from inference.manifest import MODELS_DIR, all_manifests, verify
from inference.product_embedding import DIMENSIONS, ProductEmbedder, UnreadableImage, preprocess


@pytest.fixture(scope="module")
def embedder() -> ProductEmbedder:
    return ProductEmbedder(all_manifests()["product_embedding"])


def test_every_model_matches_its_manifest() -> None:
    manifests = all_manifests()
    assert "product_embedding" in manifests
    for manifest in manifests.values():
        verify(manifest)  # sha256 of the committed file
        assert (MODELS_DIR / manifest.name / "MODEL_CARD.md").is_file()
        assert any((MODELS_DIR / manifest.name).glob("LICENSE*"))
        assert manifest.sources, "a model must say where it came from"


def _shifted(data: bytes, dx: int, dy: int) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    background = image.getpixel((0, 0))
    moved = Image.new("RGB", image.size, background)
    moved.paste(image, (dx, dy))
    out = io.BytesIO()
    moved.save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_embedding_is_stable_under_a_small_shift_and_tells_garments_apart(embedder: ProductEmbedder) -> None:
    dress = encode(product_picture("dresses", "red", "florals", 11), "JPEG")
    shifted = _shifted(dress, 18, 12)
    others = [
        encode(product_picture("bottoms", "navy", "checks", 12), "JPEG"),
        encode(product_picture("shoes", "black", "solid", 13), "JPEG"),
        encode(product_picture("tops", "yellow", "stripes", 14), "JPEG"),
    ]
    vectors = embedder.embed([dress, shifted, *others])
    assert vectors.shape == (5, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors[0]
    assert similarity[1] > 0.9, similarity
    assert all(similarity[2:] < similarity[1] - 0.15), similarity


def test_batch_and_single_runs_agree(embedder: ProductEmbedder) -> None:
    images = [
        encode(product_picture("tops", c, "dots", i), "PNG") for i, c in enumerate(["red", "teal", "pink"])
    ]
    together = embedder.embed(images)
    alone = np.concatenate([embedder.embed([image]) for image in images])
    assert np.abs(together - alone).max() < 1e-4


def test_preprocessing_pads_to_a_square_and_normalises() -> None:
    wide = encode(product_picture("shoes", "brown", "solid", 3).resize((512, 256)), "PNG")
    pixels = preprocess(wide)
    assert pixels.shape == (3, 224, 224)
    assert pixels.dtype == np.float32
    assert pixels.min() >= -1.0
    assert pixels.max() <= 1.0


@pytest.mark.parametrize(
    "data", [b"", b"not an image", encode(product_picture("tops", "red", "solid", 1), "JPEG")[:400]]
)
def test_unreadable_images_are_refused(embedder: ProductEmbedder, data: bytes) -> None:
    with pytest.raises(UnreadableImage):
        embedder.embed([data])


def test_person_segmentation_covers_a_rendered_figure() -> None:
    from devstack.demo.figures import render_figure
    from inference.body import PersonSegmenter

    segmenter = PersonSegmenter(all_manifests()["person_segmentation"])
    for figure in (render_figure(), render_figure(900, 1200, body_height=0.8)):
        ours = segmenter.probabilities(figure.image) > 0.5
        truth = np.asarray(figure.mask) > 127
        iou = float((ours & truth).sum() / (ours | truth).sum())
        assert iou >= 0.9, iou
    empty = Image.new("RGB", (600, 800), (236, 234, 228))
    assert segmenter.probabilities(empty).max() < 0.5


_CHECKED_JOINTS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ankle", "right_ankle")


def _joint_errors(
    pose: Any, joints: Mapping[str, tuple[float, float]], height: int
) -> list[tuple[str, float]]:
    """Each checked joint's distance from where it was drawn, as a share of the image height."""
    errors = []
    for joint in _CHECKED_JOINTS:
        found, (x, y) = pose.landmarks[joint], joints[joint]
        errors.append((joint, float(np.hypot(found.x - x, found.y - y)) / height))
    return errors


def test_pose_landmarks_find_the_joints_of_a_rendered_figure() -> None:
    """Shoulders, hips and ankles within 3% of the image height of the drawn joints."""
    from devstack.demo.figures import render_figure
    from inference.body import PersonSegmenter, PoseEstimator, body_crop

    manifests = all_manifests()
    segmenter = PersonSegmenter(manifests["person_segmentation"])
    estimator = PoseEstimator(manifests["pose_landmarks"])
    for figure in (render_figure(), render_figure(seed_shift=40)):
        crop = body_crop(segmenter.probabilities(figure.image) > 0.5)
        assert crop is not None
        pose = estimator.estimate(figure.image, crop)
        assert pose.presence > 0.9
        for joint, error in _joint_errors(pose, figure.joints, figure.image.size[1]):
            assert error < 0.03, (joint, error)
            assert pose.landmarks[joint].visibility > 0.9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pose_landmarks_find_the_joints_of_a_rendered_person(seed: int) -> None:
    """A synthetic person photographed from the front and the side (training/body): shoulders,
    hips and ankles within 3% of the image height in both views."""
    from inference.body import PersonSegmenter, PoseEstimator, body_crop
    from training.body.anthropometry import sample_body
    from training.body.render import render_pair
    from training.body.scene import Camera, Look, Pose

    manifests = all_manifests()
    segmenter = PersonSegmenter(manifests["person_segmentation"])
    estimator = PoseEstimator(manifests["pose_landmarks"])
    rng = np.random.default_rng(seed)
    pair = render_pair(sample_body(rng), rng, setup=(Pose(), Camera(fill=0.75), Look()))
    for photo in (pair.front, pair.side):
        probabilities = segmenter.probabilities(photo.image)
        ours = probabilities > 0.5
        iou = float((ours & photo.mask).sum() / (ours | photo.mask).sum())
        assert iou >= 0.9, iou
        crop = body_crop(ours)
        assert crop is not None
        pose = estimator.estimate(photo.image, crop)
        assert pose.presence > 0.9
        for joint, error in _joint_errors(pose, photo.joints, photo.image.size[1]):
            assert error < 0.03, (joint, error)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_heatmap_refinement_takes_the_weighted_mean_of_the_window_around_the_regressed_point() -> None:
    from inference.body import INPUT, refine_from_heatmaps

    cell = INPUT / 64  # input pixels per heatmap cell
    heatmaps = np.full((64, 64, 4), -30.0, dtype=np.float32)  # nothing anywhere
    # Landmark 0: a symmetric blob around cell (col 20, row 30) -> exactly that cell's position.
    for dr, dc, p in [(0, 0, 0.9), (-1, 0, 0.5), (1, 0, 0.5), (0, -1, 0.5), (0, 1, 0.5)]:
        heatmaps[30 + dr, 20 + dc, 0] = _logit(p)
    # ... and a stronger blob 5 cells away, outside the 7x7 window: ignored.
    heatmaps[30, 26, 0] = _logit(0.99)
    # Landmark 1: two cells of one row, 0.8 and 0.6 -> their weighted mean.
    heatmaps[10, 40, 1], heatmaps[10, 41, 1] = _logit(0.8), _logit(0.6)
    # Landmark 2: a faint heatmap (peak 0.4 < 0.5) is not trusted.
    heatmaps[50, 50, 2] = _logit(0.4)
    # Landmark 3: regressed outside the crop; kept as it is even though the map is confident.
    heatmaps[0, 0, 3] = _logit(0.95)
    regressed = np.array(
        [[21.6 * cell, 31.2 * cell], [42.5 * cell, 11.5 * cell], [50.5 * cell, 50.5 * cell], [-3.0, -2.0]]
    )
    refined = refine_from_heatmaps(regressed, heatmaps)
    assert refined.shape == (4, 2)
    assert np.allclose(refined[0], [20 * cell, 30 * cell], atol=1e-4)
    expected_col = (40 * 0.8 + 41 * 0.6) / 1.4
    assert np.allclose(refined[1], [expected_col * cell, 10 * cell], atol=1e-4)
    assert np.array_equal(refined[2], regressed[2])
    assert np.array_equal(refined[3], regressed[3])
    # The threshold and the window are parameters: with a lower bar the faint landmark moves.
    assert np.allclose(refine_from_heatmaps(regressed, heatmaps, min_confidence=0.3)[2], [50 * cell] * 2)
    # A wider window reaches the far blob, which then pulls landmark 0 towards it.
    assert refine_from_heatmaps(regressed, heatmaps, kernel=13)[0, 0] > 21 * cell
    assert np.array_equal(regressed[0], [21.6 * cell, 31.2 * cell])  # the input is not modified


def test_heatmap_refinement_at_the_edge_of_the_map_uses_the_cells_inside_it() -> None:
    from inference.body import INPUT, refine_from_heatmaps

    cell = INPUT / 64
    heatmaps = np.full((64, 64, 1), -30.0, dtype=np.float32)
    heatmaps[63, 0, 0], heatmaps[62, 0, 0] = _logit(0.9), _logit(0.9)
    refined = refine_from_heatmaps(np.array([[0.5, INPUT - 0.5]]), heatmaps)
    assert np.allclose(refined[0], [0.0, 62.5 * cell], atol=1e-4)
