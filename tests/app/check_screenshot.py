#!/usr/bin/python3
"""Checks a `lumen --screenshot` PNG shows what a reader expects.

usage: check_screenshot.py FILE LAYOUT

1x1: one large viewport holding a CT slice (dark background, bright bone, mid-grey soft
tissue). mpr: four viewports: three slices with coloured crosshair lines and a 3D
rendering.
"""
import sys

import numpy as np
from PIL import Image

path, layout = sys.argv[1], sys.argv[2]
img = np.asarray(Image.open(path).convert("RGB")).astype(int)
h, w, _ = img.shape
assert (w, h) == (1440, 900), f"unexpected size {w}x{h}"
grey = img.mean(axis=2)
# The viewport area: the central part of the window (docks left and right).
view = grey[60:h - 40, 300:w - 260]
hist = np.histogram(view, bins=8, range=(0, 256))[0] / view.size
assert hist[0] > 0.05, f"no dark background in the viewports: {hist}"
assert hist[-2:].sum() > 0.01, f"no bright (bone) pixels: {hist}"
assert hist[2:6].sum() > 0.15, f"no mid-grey (soft tissue) pixels: {hist}"

if layout == "mpr":
    rgb = img[60:h - 40, 300:w - 260]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Lines may fall between pixels and be spread over two: test hue, not exact colour.
    red = ((r - g > 60) & (r - b > 60)).sum()
    green = ((g - r > 50) & (g - b > 40)).sum()
    yellow = ((r - b > 60) & (g - b > 50) & (abs(r - g) < 60)).sum()
    assert red > 200 and green > 200 and yellow > 200, f"crosshair lines missing: red {red} green {green} yellow {yellow}"
print(f"{path}: ok ({layout})")
