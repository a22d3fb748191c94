"""Program graphics drawn with Pillow and kept as YUV 4:2:0 planes.

Everything the program shows besides a source (slates, lower thirds, name cards, the
test pattern) is rendered once, when it is first needed, into the encoder's own pixel
format. Per frame the program then only copies or alpha-blends numpy planes: no text
rendering and no colour conversion on the frame clock.

A picture is the ndarray PyAV uses for ``yuv420p``: shape ``(height * 3 // 2, width)``,
the Y plane in the first ``height`` rows, then U and V each flattened into
``height // 4`` rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

Plane = npt.NDArray[np.uint8]
RGB = tuple[int, int, int]

BACKGROUND: RGB = (16, 24, 48)
ACCENT: RGB = (0, 150, 110)
WHITE: RGB = (245, 245, 245)
MUTED: RGB = (170, 180, 200)


def planes(picture: Plane, width: int, height: int) -> tuple[Plane, Plane, Plane]:
    """Views of the Y, U and V planes of a yuv420p picture (writes go through)."""
    flat = picture.reshape(-1)  # a view: PyAV's arrays are contiguous
    luma, chroma = width * height, (width // 2) * (height // 2)
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return y, u, v


def pixels(frame: av.VideoFrame) -> Plane:
    """A yuv420p frame's picture as a (writable) ndarray."""
    return cast(Plane, frame.to_ndarray())


def rgb_to_yuv420(rgb: npt.NDArray[np.uint8]) -> Plane:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return pixels(frame.reformat(format="yuv420p"))


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, size: int, max_width: int) -> tuple[str, int]:
    """Shrink the font (and finally truncate) until ``text`` fits ``max_width`` pixels."""
    while size > 12 and draw.textlength(text, font=font(size)) > max_width:
        size = int(size * 0.9)
    while len(text) > 4 and draw.textlength(text, font=font(size)) > max_width:
        text = text[:-2] + "…"
    return text, size


def slate(width: int, height: int, headline: str, lines: tuple[str, ...] = ()) -> Plane:
    """A full-screen card: the headline large, then smaller lines, on the event colours."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    unit = height / 720
    draw.rectangle((0, int(height * 0.82), width, height), fill=ACCENT)
    margin = int(width * 0.08)
    text, size = _fit_text(draw, headline, int(64 * unit), width - 2 * margin)
    y = int(height * 0.30)
    draw.text((margin, y), text, font=font(size), fill=WHITE)
    y += int(size * 1.6)
    for line in lines:
        text, line_size = _fit_text(draw, line, int(36 * unit), width - 2 * margin)
        draw.text((margin, y), text, font=font(line_size), fill=MUTED)
        y += int(line_size * 1.5)
    return rgb_to_yuv420(np.asarray(image))


@dataclass(frozen=True, slots=True)
class Overlay:
    """A band of graphics alpha-blended over the lower part of the program picture.

    Only the band's drawn part is kept: columns ``left:right`` (even), outside which the
    graphics are fully transparent, so blending the rest would change nothing. The
    graphics are kept premultiplied by their alpha (``y * alpha``) with the inverse alpha
    (``256 - alpha``) beside them: per frame, one multiply and one add per pixel.
    """

    top: int  # first row, even
    left: int  # first drawn column, even
    right: int  # past the last drawn column, even
    y: npt.NDArray[np.uint16]  # Y * alpha
    u: npt.NDArray[np.uint16]  # U * alpha, chroma resolution
    v: npt.NDArray[np.uint16]
    inverse: npt.NDArray[np.uint16]  # 256 - alpha (0..256), luma resolution
    inverse_c: npt.NDArray[np.uint16]  # the same at chroma resolution

    def over(self, frame: av.VideoFrame) -> av.VideoFrame:
        """A new yuv420p frame: ``frame`` (left untouched) with the band blended on.

        One copy of the picture, straight from plane to plane; ``frame`` may be a
        source's held frame, shown again next tick.
        """
        out = av.VideoFrame(frame.width, frame.height, "yuv420p")
        y, u, v = (_view(plane) for plane in out.planes)
        for src, dst in zip(frame.planes, (y, u, v), strict=True):
            dst[...] = _view(src)
        rows, left, right = self.y.shape[0], self.left, self.right
        _blend(y[self.top : self.top + rows, left:right], self.y, self.inverse)
        crow, cl, cr = self.top // 2, left // 2, right // 2
        _blend(u[crow : crow + rows // 2, cl:cr], self.u, self.inverse_c)
        _blend(v[crow : crow + rows // 2, cl:cr], self.v, self.inverse_c)
        return out


def _view(plane: av.video.plane.VideoPlane) -> Plane:
    """A plane of a frame as a 2-D ndarray, without a copy (writes go through)."""
    flat = np.frombuffer(plane, dtype=np.uint8)  # type: ignore[call-overload]
    return cast(Plane, flat.reshape(plane.height, plane.line_size)[:, : plane.width])


def _blend(
    dst: Plane, premultiplied: npt.NDArray[np.uint16], inverse: npt.NDArray[np.uint16]
) -> None:
    # (src * a + dst * (256 - a)) >> 8, at most 255 * 256: no overflow in 16 bits.
    mixed = dst * inverse
    mixed += premultiplied
    mixed >>= 8
    dst[...] = mixed


def lower_third(width: int, height: int, name: str, title: str) -> Overlay:
    """The speaker's name and title in a band across the lower third."""
    top, rgba = lower_third_band(width, height, name, title)
    band_h = rgba.shape[0]
    yuv = rgb_to_yuv420(rgba[:, :, :3])
    y, u, v = planes(yuv, width, band_h)
    alpha = rgba[:, :, 3].astype(np.uint16)
    alpha = alpha + (alpha >> 7)  # 255 -> 256, so opaque pixels replace exactly
    alpha_c = alpha.reshape(band_h // 2, 2, width // 2, 2).mean(axis=(1, 3)).astype(np.uint16)
    drawn = np.flatnonzero(alpha.any(axis=0))
    left = int(drawn[0]) // 2 * 2 if drawn.size else 0
    right = min(width, (int(drawn[-1]) + 2) // 2 * 2) if drawn.size else 0
    a, ac = alpha[:, left:right], alpha_c[:, left // 2 : right // 2]
    return Overlay(
        top,
        left,
        right,
        y[:, left:right] * a,
        u[:, left // 2 : right // 2] * ac,
        v[:, left // 2 : right // 2] * ac,
        256 - a,
        256 - ac,
    )


def lower_third_band(
    width: int, height: int, name: str, title: str
) -> tuple[int, npt.NDArray[np.uint8]]:
    """The lower third as drawn: its first row (even) and the band as RGBA, full width."""
    band_h = (int(height * 0.17) + 1) // 2 * 2
    top = (int(height * 0.74)) // 2 * 2
    image = Image.new("RGBA", (width, band_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = height / 720
    margin = int(width * 0.05)
    name_text, name_size = _fit_text(draw, name, int(44 * unit), int(width * 0.7))
    box_w = int(draw.textlength(name_text, font=font(name_size))) + 2 * margin
    if title:
        title_text, title_size = _fit_text(draw, title, int(28 * unit), int(width * 0.7))
        box_w = max(box_w, int(draw.textlength(title_text, font=font(title_size))) + 2 * margin)
    draw.rectangle((0, 0, min(width, box_w), band_h), fill=(*BACKGROUND, 225))
    draw.rectangle((0, 0, int(8 * unit) + 1, band_h), fill=(*ACCENT, 255))
    draw.text((margin, int(band_h * 0.12)), name_text, font=font(name_size), fill=(*WHITE, 255))
    if title:
        draw.text(
            (margin, int(band_h * 0.58)), title_text, font=font(title_size), fill=(*MUTED, 255)
        )
    return top, np.asarray(image)


def card(width: int, height: int, colour: RGB, headline: str, subline: str) -> Plane:
    """A solid colour card with a name on it (test pattern background, audio-only speaker)."""
    image = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(image)
    unit = height / 720
    margin = int(width * 0.06)
    text, size = _fit_text(draw, headline, int(56 * unit), width - 2 * margin)
    draw.text((margin, int(height * 0.08)), text, font=font(size), fill=WHITE)
    if subline:
        text, size = _fit_text(draw, subline, int(30 * unit), width - 2 * margin)
        draw.text((margin, int(height * 0.08) + int(70 * unit)), text, font=font(size), fill=WHITE)
    return rgb_to_yuv420(np.asarray(image))


def black(width: int, height: int) -> Plane:
    picture = np.empty((height * 3 // 2, width), dtype=np.uint8)
    picture[:height] = 16
    picture[height:] = 128
    return picture
