"""Drawing a body model into one view: for each pixel, what it sees (depth, normal, material).

Each pixel's ray is intersected with the body's mid-plane (the plane through the body that faces
the camera); the sections are evaluated there. For bodies 20-35 cm deep photographed from 2-3.5 m
the silhouette this gives differs from exact ray casting by well under a pixel. Feet are
ellipsoids ray-cast exactly, so they show the perspective of a real photo (the toes reach lower
in the picture than the heels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from training.body.model import BACKGROUND, FEATURE, LIPS, SHOES, SKIN, BodyModel, Stack, Tube
from training.body.scene import Camera, View

Region = tuple[slice, slice]


@dataclass
class Canvas:
    """One view being drawn: each pixel's ray and what it sees so far.

    Rays are (lateral, forward, z) in the camera frame. The lateral coordinate of the body frame
    is x in the front view (image right is the subject's right, -x), y in the side view (front
    of the body on the image right, unless mirrored): ``mirror`` flips it onto the image.
    """

    camera: Camera
    focal: float  # pixels
    mirror: float
    camera_side: float  # +1 when the side view's camera is on the subject's left (+x), -1 on the right
    margin: float  # pixels around a part's region (the rays of a rolled camera are not upright)
    ray_l: np.ndarray
    ray_d: np.ndarray
    ray_z: np.ndarray
    depth: np.ndarray  # towards the camera: larger is nearer
    normal_l: np.ndarray
    normal_d: np.ndarray
    material: np.ndarray
    mid_lateral: np.ndarray = field(init=False)  # where each ray meets the mid-plane
    mid_z: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mid_lateral, self.mid_z = self.plane(0.0, (slice(None), slice(None)))

    def plane(self, offset: float, region: Region) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame lateral and height where each ray of ``region`` meets the plane ``offset``
        cm nearer the camera than the mid-plane."""
        t = (self.camera.distance_cm - offset) / self.ray_d[region]
        return self.ray_l[region] * t * self.mirror, self.camera.height_cm + self.ray_z[region] * t

    def region(self, lat_lo: float, lat_hi: float, z_lo: float, z_hi: float) -> Region | None:
        """The pixels (with a margin) that can see the body-frame box, or None if none can."""
        w, h = self.camera.width, self.camera.height
        mid_lateral, mid_z = self.mid_lateral, self.mid_z
        rows = np.nonzero((mid_z[:, w // 2] >= z_lo) & (mid_z[:, w // 2] <= z_hi))[0]
        cols = np.nonzero((mid_lateral[h // 2] >= lat_lo) & (mid_lateral[h // 2] <= lat_hi))[0]
        if len(rows) == 0 or len(cols) == 0:
            return None
        pad = int(self.margin)
        return (slice(max(0, rows.min() - pad), min(h, rows.max() + pad + 1)),
                slice(max(0, cols.min() - pad), min(w, cols.max() + pad + 1)))  # fmt: skip

    def paint(
        self,
        where: Region,
        inside: np.ndarray,
        near: np.ndarray,
        nl: np.ndarray,
        nd: np.ndarray,
        mat: np.ndarray,
    ) -> None:
        """Keeps, per pixel of ``where``, whichever surface is nearer the camera."""
        d = self.depth[where]
        closer = inside & (near > d) & (mat != BACKGROUND)
        d[closer] = near[closer]
        self.normal_l[where][closer] = nl[closer]
        self.normal_d[where][closer] = nd[closer]
        self.material[where][closer] = mat[closer]


def open_canvas(model: BodyModel, view: View, camera: Camera) -> Canvas:
    """The camera's rays for ``view``, and nothing drawn yet."""
    height = model.body.measurements["height_cm"]
    w, h = camera.width, camera.height
    focal = camera.fill * h * camera.distance_cm / (height + model.body.hair_cm)
    aim = math.atan2(camera.height_cm - height * 0.46, camera.distance_cm)
    pitch, roll = aim + math.radians(camera.pitch_deg), math.radians(camera.roll_deg)
    u = np.arange(w, dtype=np.float32) - (w / 2 + camera.offset_x * w) + 0.5
    v = np.arange(h, dtype=np.float32) - h / 2 + 0.5
    du, dv = np.meshgrid(u / focal, v / focal)
    du, dv = du * math.cos(roll) - dv * math.sin(roll), du * math.sin(roll) + dv * math.cos(roll)
    # camera frame: right, forward (towards the body) = (cos p, -sin p) and image-down =
    # (-sin p, -cos p) in (forward, z) for a camera pitched down by p; rays as (lateral, forward, z)
    ray_l = du
    ray_d = math.cos(pitch) - dv * math.sin(pitch)
    ray_z = -math.sin(pitch) - dv * math.cos(pitch)
    return Canvas(
        camera=camera,
        focal=focal,
        mirror=-1.0 if (view == "front" or model.pose.mirrored) else 1.0,
        camera_side=-1.0 if model.pose.mirrored else 1.0,
        margin=0.03 * max(w, h) + abs(math.sin(roll)) * max(w, h),
        ray_l=ray_l,
        ray_d=ray_d,
        ray_z=ray_z,
        depth=np.full((h, w), -np.inf, dtype=np.float32),
        normal_l=np.zeros((h, w), np.float32),
        normal_d=np.zeros((h, w), np.float32),
        material=np.zeros((h, w), np.int8),
    )


def paint_stack(canvas: Canvas, stack: Stack, view: View) -> None:
    """A stack of superellipse sections, evaluated on the mid-plane."""
    reach = float(max(stack.half_width.max(), stack.front.max(), stack.back.max()) + stack.ease.max())
    where = canvas.region(-reach - 2, reach + 2, float(stack.z.min()) - 2, float(stack.z.max()) + 2)
    if where is None:
        return
    ll, zz = canvas.plane(0.0, where)
    a = np.interp(zz, stack.z, stack.half_width + stack.ease)
    front = np.interp(zz, stack.z, stack.front + stack.ease)
    back = np.interp(zz, stack.z, stack.back + stack.ease)
    cy = np.interp(zz, stack.z, stack.centre_y)
    n = np.interp(zz, stack.z, stack.n)
    mat = stack.material[np.clip(np.searchsorted(stack.z, zz) - 1, 0, len(stack.z) - 1)]
    inside_z = (zz >= stack.z.min()) & (zz <= stack.z.max()) & (a > 0.05)
    mirror = canvas.mirror
    if view == "front":
        t = np.abs(ll) / np.maximum(a, 1e-3)
        y = front * np.clip(1 - t**n, 0, 1) ** (1 / n)
        near = cy + y
        n_lat, n_depth = _superellipse_normal(ll, y, a, front, n)
        n_lat = np.sign(ll) * n_lat * mirror
    else:
        rel = ll - cy
        b = np.where(rel > 0, front, back)
        t = np.abs(rel) / np.maximum(b, 1e-3)
        near = a * np.clip(1 - t**n, 0, 1) ** (1 / n)
        n_depth, n_lat = _superellipse_normal(near, rel, a, b, n)
        n_lat = np.sign(rel) * n_lat * mirror
    canvas.paint(where, inside_z & (t < 1), near.astype(np.float32), n_lat, n_depth, mat.astype(np.int8))


def paint_tube(canvas: Canvas, tube: Tube, view: View) -> None:
    """A limb: its sections are evaluated on the plane through its axis."""
    camera_side = canvas.camera_side
    offset = tube.y if view == "front" else camera_side * (tube.start[0] + tube.end[0]) / 2
    reach = float(max(tube.half_width.max(), tube.half_depth.max()) + tube.ease) * 1.3 + 2
    if view == "front":
        lat_lo, lat_hi = min(tube.start[0], tube.end[0]) - reach, max(tube.start[0], tube.end[0]) + reach
    else:
        lat_lo, lat_hi = tube.y - reach, tube.y + reach
    z_lo, z_hi = min(tube.start[1], tube.end[1]) - reach, max(tube.start[1], tube.end[1]) + reach
    where = canvas.region(
        lat_lo - abs(offset) * 0.3, lat_hi + abs(offset) * 0.3, z_lo - abs(offset), z_hi + abs(offset)
    )
    if where is not None:
        tube_lateral, tube_z = canvas.plane(offset, where)
        _paint_tube_section(tube, view, tube_lateral, tube_z, camera_side, where, canvas.paint)


def paint_foot(canvas: Canvas, centre: np.ndarray, radii: np.ndarray, view: View) -> None:
    """A foot: exact ray casting against its ellipsoid."""
    camera_side = canvas.camera_side
    if view == "front":  # (image-right lateral, towards the camera, z) = (-x, y, z)
        c = np.array([-centre[0], centre[1], centre[2]])
        r = radii
    else:  # (y, x, z) with the camera on the left, (-y, -x, z) on the right
        c = np.array([centre[1] * camera_side, centre[0] * camera_side, centre[2]])
        r = np.array([radii[1], radii[0], radii[2]])
    reach = float(r.max()) * 1.6 + 5
    lo, hi = sorted((c[0] * canvas.mirror - reach, c[0] * canvas.mirror + reach))
    where = canvas.region(lo, hi, -reach, c[2] + reach)
    if where is not None:
        ray_l, ray_d, ray_z = canvas.ray_l, canvas.ray_d, canvas.ray_z
        _paint_ellipsoid(c, r, canvas.camera, ray_l[where], ray_d[where], ray_z[where], where, canvas.paint)


def draw_face(model: BodyModel, material: np.ndarray, lateral: np.ndarray, z: np.ndarray) -> None:
    """Eyes, brows, nose and mouth on the front of the head (pose models look for a face)."""
    body = model.body
    chin = body.measurements["height_cm"] - body.head_height_cm
    unit = body.head_height_cm / 22.0  # features scale with the head
    eye_z = chin + 0.52 * body.head_height_cm
    on_face = material == SKIN
    features = np.zeros(material.shape, bool)
    for side in (-1.0, 1.0):
        features |= ((lateral - side * 3.2 * unit) / (1.3 * unit)) ** 2 + (
            (z - eye_z) / (0.6 * unit)
        ) ** 2 < 1
        brow = (np.abs(lateral - side * 3.2 * unit) < 1.6 * unit) & (
            np.abs(z - eye_z - 1.5 * unit) < 0.3 * unit
        )
        features |= brow
    features |= (
        (np.abs(lateral) < 0.5 * unit) & (z < eye_z - 2.0 * unit) & (z > eye_z - 4.5 * unit) & (lateral > 0)
    )
    lips = (np.abs(lateral) < 2.4 * unit) & (np.abs(z - (chin + 0.24 * body.head_height_cm)) < 0.45 * unit)
    material[on_face & features] = FEATURE
    material[on_face & lips] = LIPS


def _superellipse_normal(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    gx = np.abs(x) ** (n - 1) / np.maximum(a, 1e-3) ** n
    gy = np.abs(y) ** (n - 1) / np.maximum(b, 1e-3) ** n
    norm = np.hypot(gx, gy) + 1e-9
    return gx / norm, gy / norm


Painter = Callable[[Region, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def _paint_tube_section(
    tube: Tube,
    view: View,
    lateral: np.ndarray,
    z: np.ndarray,
    camera_side: float,
    where: Region,
    paint: Painter,
) -> None:
    """``lateral`` is x (front view) or y (side view); ``camera_side`` is +1 when the side view's
    camera is on the subject's left (+x), -1 on the right."""
    x0, z0 = tube.start
    x1, z1 = tube.end
    length = math.hypot(x1 - x0, z1 - z0)
    ux, uz = (x1 - x0) / length, (z1 - z0) / length
    zz, ll = z, lateral
    if view == "front":
        rx, rz = ll - x0, zz - z0
        along = rx * ux + rz * uz
        s = np.clip(along / length, 0.0, 1.0)
        off_x = ll - (x0 + s * (x1 - x0))
        off_z = zz - (z0 + s * (z1 - z0))
        dist = np.hypot(off_x, off_z)
        ease = np.where(s < tube.cut, tube.ease, 0.0)
        rw = np.interp(s, tube.s, tube.half_width) + ease
        rd = np.interp(s, tube.s, tube.half_depth) + ease
        inside = dist < rw
        q = np.sqrt(np.clip(1 - (dist / rw) ** 2, 0, 1))
        near = tube.y + rd * q
        n_lat = off_x / rw**2
        n_depth = q / rd
    else:
        # lateral is the front-back axis; the section at height z is an ellipse centred on the
        # axis, rw / |uz| across (x) and rd deep (y)
        along_z = (zz - z0) / (z1 - z0)
        s = np.clip(along_z, 0.0, 1.0)
        ease = np.where(s < tube.cut, tube.ease, 0.0)
        rw = np.interp(s, tube.s, tube.half_width) + ease
        rd = np.interp(s, tube.s, tube.half_depth) + ease
        over = np.abs(along_z - s) * abs(z1 - z0)
        shrink = np.sqrt(np.clip(1 - (over / rw) ** 2, 0, 1))
        rd = rd * shrink
        rel = ll - tube.y
        inside = (np.abs(rel) < rd) & (shrink > 0)
        x_axis = x0 + s * (x1 - x0)
        q = np.sqrt(np.clip(1 - (rel / np.maximum(rd, 1e-3)) ** 2, 0, 1))
        near = camera_side * x_axis + rw / max(abs(uz), 0.2) * shrink * q
        n_lat = rel / np.maximum(rd, 1e-3) ** 2
        n_depth = q / np.maximum(rw, 1e-3)
    material = np.where(s < tube.cut, tube.clothing, SKIN).astype(np.int8)

    norm = np.hypot(n_lat, n_depth) + 1e-9
    paint(where, inside, near.astype(np.float32), n_lat / norm, n_depth / norm, material)


def _paint_ellipsoid(
    centre: np.ndarray, radii: np.ndarray, camera: Camera, ray_l: np.ndarray, ray_d: np.ndarray,
    ray_z: np.ndarray, where: Region, paint: Painter,
) -> None:  # fmt: skip
    """Exact ray casting. Coordinates: (image-right lateral, towards the camera, z); the camera
    is at (0, distance, camera height)."""
    origin = np.array([0.0, camera.distance_cm, camera.height_cm])
    directions = np.stack([ray_l, -ray_d, ray_z], axis=-1)
    o = (origin - centre) / radii
    d = directions / radii
    a = np.sum(d * d, axis=-1)
    b = 2 * np.sum(d * o, axis=-1)
    c = float(o @ o) - 1
    disc = b * b - 4 * a * c
    hit = disc > 0
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    point = origin + directions * t[..., None]
    hit &= point[..., 2] >= 0.0
    normal = (point - centre) / radii**2
    norm = np.linalg.norm(normal, axis=-1) + 1e-9
    paint(where, hit, np.where(hit, point[..., 1], -np.inf).astype(np.float32), normal[..., 0] / norm,
          normal[..., 1] / norm, np.full(hit.shape, SHOES, np.int8))  # fmt: skip
