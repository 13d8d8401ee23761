"""The training material of the CT models: clean slices ("bases") with, for each, the
reconstructed noise of its own projections (ctsim), from which any dose is drawn.

Bases:
  * the real head CT (sinus scan): area-averaged 3 x 3 in-plane to 0.94 mm, 3 adjacent
    slices averaged, then total-variation denoised: its bone-kernel noise at 0.31 mm
    (about 60 HU) would otherwise be part of the "clean" image;
  * CT-like slices of the Colin27 head (ct_data.colin_ct_phantom), which give the brain
    anatomy (cortex, ventricles, skull vault) the sinus scan lacks; each slice is used at
    two random in-plane rotations and pixel sizes (0.9 to 1.0 mm).
For every base: the line integrals (360 views, parallel beam) and K pairs of unit noise
images (ctsim.Slice.unit_noise), each reconstructed in the two parts that blend into any
FBP window from smooth (Hann) to sharp (ramp), so that every kernel's grain can be drawn;
plus the soft-tissue mask and the second moments of the unit noise there (its SD for any
window). Built once and cached (about 10 minutes on 2 cores).
"""
import math
import os

import numpy as np
import torch

import ct_data
import ctsim

BANK_VERSION = 4
U2_SCALE = 1e-4  # the electronic noise images are stored times this (half precision's range)


def _resample(img, pixel_in, pixel_out, angle_deg, order=1):
    from scipy import ndimage as ndi
    img = ndi.rotate(img, angle_deg, reshape=True, order=order, mode="constant", cval=-1000.0)
    return ndi.zoom(img, pixel_in / pixel_out, order=order, mode="constant", cval=-1000.0)


def _crop_to_body(img, margin=4):
    body = img > -500
    if not body.any():
        return None
    ys, xs = np.nonzero(body)
    y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, img.shape[0])
    x0, x1 = max(xs.min() - margin, 0), min(xs.max() + margin + 1, img.shape[1])
    return img[y0:y1, x0:x1]


def clean_slice(hu, z):
    """Slice z of a real CT volume [Z, Y, X] with its own noise taken out, to serve as a
    noise-free image: the mean of it and its two neighbours, total-variation denoised. Used
    for the training bases and for the held-out evaluation's reference alike."""
    from scipy import ndimage as ndi
    from skimage.restoration import denoise_tv_chambolle
    lo = max(z - 1, 0)
    s = ndi.uniform_filter1d(hu[lo:z + 2], 3, axis=0)[z - lo]  # volume ends: the end slice twice
    return (denoise_tv_chambolle(s / 1000.0, weight=0.03) * 1000.0).astype(np.float32)


def bases(seed=0, sinus_every=3, colin_every=2):
    rng = np.random.default_rng(seed)
    out = []
    hu, sp = ct_data.load_sinus()
    n = (hu.shape[1] // 3) * 3
    area = hu[:, :n, :n].reshape(hu.shape[0], n // 3, 3, n // 3, 3).mean((2, 4))
    for z in range(2, hu.shape[0] - 2, sinus_every):
        if (area[z] > -200).mean() < 0.15:
            continue
        out.append(("sinus", z, clean_slice(area, z), sp[1] * 3))
    ph = ct_data.colin_ct_phantom(seed)
    for z in range(0, ph.shape[0], colin_every):
        for _ in range(2):
            pixel = rng.uniform(0.9, 1.0)
            img = _resample(ph[z], 1.0, pixel, rng.uniform(-20, 20))
            img = _crop_to_body(img)
            if rng.random() < 0.5:
                img = img[:, ::-1]
            out.append(("colin", z, np.ascontiguousarray(img, dtype=np.float32), pixel))
    return out


def build(path, k=4, seed=0, views=360):
    if os.path.exists(path):
        bank = torch.load(path)
        if bank.get("version") == BANK_VERSION:
            return bank
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    items = []
    bs = bases(seed)
    for i, (src, z, img, pixel) in enumerate(bs):
        sl = ctsim.Slice(img, pixel, views)
        h, w = img.shape
        mask = ctsim.soft_tissue_mask(img, size=5)
        u = [sl.unit_noise(gen) for _ in range(k)]
        # [k, 2 kernel parts, h, w]; half precision: noise needs no more, and the bank
        # stays under a gigabyte in memory.
        u1 = torch.stack([a[:, :h, :w] for a, _ in u])
        u2 = torch.stack([b[:, :h, :w] for _, b in u]) * U2_SCALE
        m = torch.from_numpy(mask)
        moments = None
        if mask.sum() >= 200:
            v = u1[:, :, m].double()  # [k, 2, pixels]
            moments = [float((v[:, 0] ** 2).mean()), float((v[:, 1] ** 2).mean()), float((v[:, 0] * v[:, 1]).mean())]
        u1, u2 = u1.half(), u2.half()
        if not (torch.isfinite(u1).all() and torch.isfinite(u2).all()):  # beyond half precision's 65504
            raise OverflowError(f"bank base {i} ({src} slice {z}): unit noise overflows half precision")
        items.append({"source": src, "z": z, "pixel_mm": pixel, "image": torch.from_numpy(img), "mask": m,
                      "u1": u1, "u2": u2, "moments": moments})
        print(f"bank {i + 1}/{len(bs)}: {src} slice {z}, {h}x{w} at {pixel:.3f} mm, unit noise SD "
              f"{unit_sd(items[-1], ctsim.SMOOTHEST)} (Hann) .. {unit_sd(items[-1], ctsim.SHARPEST)} (ramp)", flush=True)
    bank = {"version": BANK_VERSION, "items": items}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(bank, path)
    return bank


def unit_sd(item, window):
    """SD in the item's soft tissue of its unit noise reconstructed with `window` (None where
    the item has too little soft tissue)."""
    if item["moments"] is None:
        return None
    rr, cc, rc = item["moments"]
    return math.sqrt(window ** 2 * rr + (1 - window) ** 2 * cc + 2 * window * (1 - window) * rc)


def noise_at(item, i0, idx, window, box=(slice(None), slice(None)), fraction=None):
    """Reconstructed noise (HU) of realisation idx at dose i0 (photons per ray) with FBP
    window `window` (ctsim: 0.5 Hann .. 1 ramp), cut to box; or, with fraction, the noise to
    add to an image of dose i0 to bring it to fraction * i0: Poisson counts at
    i0 f / (1 - f) and electronic variance se^2 (1 + f) / (1 - f) (ctsim.Slice.noise)."""
    se = ctsim.ELECTRONIC_SD
    if fraction is not None:
        i0, se = ctsim.insertion(i0, fraction)
    u1 = ctsim.blend(item["u1"][idx][(slice(None),) + box].float(), window)
    u2 = ctsim.blend(item["u2"][idx][(slice(None),) + box].float(), window)
    return u1 / math.sqrt(i0) + u2 * (se / U2_SCALE / i0)


def i0_for(item, sd, window):
    """Photons per ray that give noise SD `sd` (HU, the true SD) in the item's soft tissue
    with FBP window `window`."""
    return (unit_sd(item, window) / sd) ** 2


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--bank", default=os.path.expanduser("~/.cache/lumen-training/ct_bank.pt"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    build(a.bank)
