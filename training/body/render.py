"""Photo-like renders of a parametric body, front and side, with their exact silhouettes.

The body (``model``: stacked cross-sections driven by the body's measurements) is drawn into
each view (``paint``), then shaded into a photo: lighting (Lambertian, a random light), skin
tone, fitted clothing that adds a little ease, hair, a plain wall and floor of random colours with
a soft shadow, camera distance, height, focal length, pitch and roll, A-pose jitter (``scene``),
sensor noise, defocus and JPEG artefacts; optionally a cluttered room behind the person (``room``).
World frame: x to the subject's left, y forward (out of the chest), z up from the floor, in cm.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter

from training.body.anthropometry import Body
from training.body.model import BACKGROUND, BodyModel, build_model
from training.body.paint import Canvas, draw_face, open_canvas, paint_foot, paint_stack, paint_tube
from training.body.room import cluttered_room
from training.body.scene import Camera, Look, Pose, View, random_setup


@dataclass(frozen=True)
class Render:
    image: Image.Image  # RGB, before JPEG compression
    jpeg: bytes
    mask: np.ndarray  # bool (height, width): the person (body, clothes, hair, shoes)
    pixels_per_cm: float  # at the body's mid-plane, at the image centre
    floor_row: float  # image row of the floor under the body's mid-plane (at the image centre column)
    stature_px: float  # the body's height (floor to the top of the head, no hair) in pixels at the mid-plane
    # Where the model's joints (shoulders, elbows, wrists, hips, ankles) land in the image: (column, row).
    joints: dict[str, tuple[float, float]] = field(default_factory=dict)


def render(
    model: BodyModel, view: View, camera: Camera, look: Look, rng: np.random.Generator, *, person: bool = True
) -> Render:
    """One photo of the model from ``view``; ``rng`` draws the light's jitter and the sensor noise.
    With ``person=False`` the same photo of the empty room."""
    canvas = open_canvas(model, view, camera)
    if person:
        for stack in model.stacks:
            paint_stack(canvas, stack, view)
        for tube in model.tubes:
            paint_tube(canvas, tube, view)
        for centre, radii in model.feet:
            paint_foot(canvas, centre, radii, view)
        if view == "front":
            draw_face(model, canvas.material, canvas.mid_lateral, canvas.mid_z)
    material = canvas.material
    mask = material != BACKGROUND
    image = _shade(
        look, camera, material, canvas.normal_l, canvas.normal_d, mask, canvas.ray_d, canvas.ray_z, rng
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=look.jpeg_quality)
    floor_row, head_row = _floor_and_head_rows(canvas, model.body.measurements["height_cm"])
    return Render(
        image=image,
        jpeg=out.getvalue(),
        mask=mask,
        pixels_per_cm=canvas.focal / camera.distance_cm,
        floor_row=floor_row,
        stature_px=floor_row - head_row,
        joints=_joints(canvas, model, view),
    )


def _floor_and_head_rows(canvas: Canvas, height: float) -> tuple[float, float]:
    """Image rows (at the centre column) of the floor and of the top of the head on the mid-plane."""
    w, h = canvas.camera.width, canvas.camera.height
    column = canvas.mid_z[:, w // 2].astype(np.float64)  # decreasing down the image
    rows = np.arange(h, dtype=np.float64)
    floor_row = float(np.interp(0.0, column[::-1], rows[::-1]))
    head_row = float(np.interp(height, column[::-1], rows[::-1]))
    return floor_row, head_row


def _joints(canvas: Canvas, model: BodyModel, view: View) -> dict[str, tuple[float, float]]:
    """Where the model's joints land in the image: (column, row)."""
    joints = {}
    for name, (x, y, z) in model.landmarks.items():
        # The joint's depth plane, then the pixel whose ray meets it at the joint.
        offset, lateral = (y, x) if view == "front" else (canvas.camera_side * x, y)
        lat, zz = canvas.plane(offset, (slice(None), slice(None)))
        row, col = np.unravel_index(np.argmin((lat - lateral) ** 2 + (zz - z) ** 2), lat.shape)
        joints[name] = (float(col) + 0.5, float(row) + 0.5)
    return joints


def _shade(
    look: Look, camera: Camera, material: np.ndarray, normal_l: np.ndarray, normal_d: np.ndarray,
    mask: np.ndarray, ray_d: np.ndarray, ray_z: np.ndarray, rng: np.random.Generator,
) -> Image.Image:  # fmt: skip
    h, w = material.shape
    # background: a wall a metre behind the body and the floor in front of it, a vignette, and a
    # soft shadow (the silhouette blurred and moved away from the light)
    t_wall = (camera.distance_cm + 100.0) / ray_d
    t_floor = np.where(ray_z < 0, camera.height_cm / np.maximum(-ray_z, 1e-6), np.inf)
    floor = (t_floor < t_wall)[..., None]
    background = np.where(floor, np.asarray(look.floor, np.float32), np.asarray(look.wall, np.float32))
    if look.clutter:
        background = cluttered_room(background, floor[..., 0], look.clutter)
    vignette = 1.0 - 0.12 * (np.linspace(-1, 1, h, dtype=np.float32)[:, None] ** 2
                             + np.linspace(-1, 1, w, dtype=np.float32)[None, :] ** 2)  # fmt: skip
    small = Image.fromarray((mask * 255).astype(np.uint8)).resize((w // 4, h // 4), Image.Resampling.BILINEAR)
    small = small.filter(ImageFilter.GaussianBlur(radius=w / 160))
    shadow = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
    shadow = np.roll(shadow, int(-look.light[0] * w / 25), axis=1)
    background *= (vignette * (1 - look.shadow * shadow))[..., None]
    skin = np.asarray(look.skin, np.float32)
    colours = np.array(
        [
            (0, 0, 0),
            look.skin,
            look.top,
            look.bottom,
            look.hair,
            look.shoes,
            skin * 0.3,
            skin * (0.62, 0.42, 0.42),
        ],
        np.float32,
    )
    light = np.asarray(look.light, np.float32)
    light /= np.linalg.norm(light)
    lambert = np.clip(normal_l * light[0] + normal_d * light[1], 0, 1)
    intensity = 0.35 + 0.75 * lambert + 0.1 * light[2]
    intensity *= 1 + 0.04 * rng.standard_normal((h, w), dtype=np.float32)
    person = colours[material] * intensity[..., None]
    rgb = np.where(mask[..., None], person, background) * look.brightness
    rgb += look.noise * rng.standard_normal(rgb.shape, dtype=np.float32)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    if look.blur > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(radius=look.blur))
    return image


@dataclass(frozen=True)
class Pair:
    body: Body
    front: Render
    side: Render
    front_camera: Camera
    side_camera: Camera


def render_pair(
    body: Body, rng: np.random.Generator, *, size: tuple[int, int] = (720, 1280),
    setup: tuple[Pose, Camera, Look] | None = None,
) -> Pair:  # fmt: skip
    """Front and side photos of one body, taken in one session (same clothes and room; the side
    photo from a slightly different spot)."""
    pose, camera, look = setup or random_setup(rng, size)
    model = build_model(body, pose, look)
    front = render(model, "front", camera, look, rng)
    side_camera = Camera(
        width=camera.width,
        height=camera.height,
        distance_cm=camera.distance_cm * float(rng.uniform(0.95, 1.05)),
        height_cm=camera.height_cm,
        fill=camera.fill,
        pitch_deg=camera.pitch_deg + float(rng.normal(0, 0.5)),
        roll_deg=float(rng.normal(0, 1.0)),
        offset_x=float(rng.uniform(-0.05, 0.05)),
    )
    side = render(model, "side", side_camera, look, rng)
    return Pair(body=body, front=front, side=side, front_camera=camera, side_camera=side_camera)


def framed_pair(body: Body, rng: np.random.Generator, *, size: tuple[int, int] = (720, 1280)) -> Pair:
    """A random session (``random_setup``) whose photos hold all of the person: a broad body with
    its arms held out can reach past the edges of a portrait photo at the drawn framing; the
    camera then steps back (a smaller fill) until both photos show the whole person, as a shopper
    following the instructions would."""
    pose, camera, look = random_setup(rng, size)
    for _ in range(4):
        pair = render_pair(body, rng, size=size, setup=(pose, camera, look))
        if not (_touches_edge(pair.front.mask) or _touches_edge(pair.side.mask)):
            break
        camera = replace(camera, fill=camera.fill * 0.9)
    return pair


def _touches_edge(mask: np.ndarray, margin: int = 3) -> bool:
    return bool(
        mask[:margin].any() or mask[-margin:].any() or mask[:, :margin].any() or mask[:, -margin:].any()
    )
