#!/usr/bin/python3
"""Fits how a head CT slice's noise grows with its size, for the dose grader's size-referred
grade (lumen.json estimate.size_reference), on the grader's training bases only.

    /usr/bin/python3 models/training/fit_size_reference.py [--every 1] [--out size_reference.json]

At one dose (photons per ray) a larger slice is noisier: its rays pass more water. For each
training base of ct_bank (the validation bases, every 10th, left out as in training) with
enough soft tissue: its water-equivalent diameter (after AAPM Report 220: pixels above
-500 HU, weighted by HU / 1000 + 1, no body contour, as the engine computes it) and the SD in its soft tissue of the noise of one projection-noise
realisation at a fixed photon count (ctsim.Slice.unit_noise, Poisson part), reconstructed
with 11 kernels from smooth to sharp; ln SD averaged over the kernels. One realisation per
base (the bank draws four): an SD over thousands of soft-tissue pixels varies by well under
1 % between realisations.

What the grade needs is the slope within one scan (it refers the slices of one series to one
size), so the fit is ln SD = slope x diameter + b x ln(pixel mm) + one constant per source
scan: the two sources (the real sinus scan at 130-152 mm, the Colin27 CT-like head at
183-208 mm) differ in more than size, and a single line through both would take that
difference for size. The pixel term takes out the bases' random pixel sizes (0.9-1.0 mm).
SLOPE_LN_PER_MM is what this fitted (2026-12-05, all 126 training bases); it also prints the
single line's slope for comparison.
"""
import argparse
import json
import math

import numpy as np
import torch

import ct_bank
import ctsim

SLOPE_LN_PER_MM = 0.00755  # main()'s within-source fit; see the module's note
KERNELS = np.linspace(ctsim.SMOOTHEST, ctsim.SHARPEST, 11)


def water_equivalent_diameter(hu, pixel_mm, pixel_mm_2=None):
    """AAPM Report 220's water-equivalent diameter (mm) of one slice: the diameter of the
    water disc that attenuates as the slice does, from the pixels above -500 HU weighted by
    HU / 1000 + 1. pixel_mm_2: the other pixel side where pixels are not square."""
    hu = np.asarray(hu, dtype=np.float64)
    body = hu[hu > -500]
    area = pixel_mm * (pixel_mm if pixel_mm_2 is None else pixel_mm_2)
    return 2.0 * math.sqrt(float(np.clip(body / 1000.0 + 1.0, 0, None).sum()) * area / math.pi)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1, help="use every n-th training base (1: all)")
    ap.add_argument("--out", default=None, help="write the fit as JSON here")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for i, (src, z, img, pixel) in enumerate(ct_bank.bases(seed=0)):
        if i % 10 == 0 or i % a.every:  # validation bases (train_dose_grader's split), or skipped
            continue
        mask = ctsim.soft_tissue_mask(img, size=5)
        if mask.sum() < 200:
            continue
        u1, _ = ctsim.Slice(img, pixel).unit_noise(gen, electronic=False)
        h, w = img.shape
        u1 = u1[:, :h, :w][:, torch.from_numpy(mask)].double()  # [2 kernel parts, pixels]
        ln_sd = float(np.mean([math.log(float((k * u1[0] + (1 - k) * u1[1]).std())) for k in KERNELS]))
        d = water_equivalent_diameter(img, pixel)
        rows.append((src, d, ln_sd, pixel))
        print(f"base {i}: {src} slice {z}, {pixel:.3f} mm, water-equivalent diameter {d:.1f} mm, ln SD {ln_sd:.4f}",
              flush=True)
    src = np.array([r[0] for r in rows])
    d = np.array([r[1] for r in rows])
    ln = np.array([r[2] for r in rows])
    sources = sorted(set(src.tolist()))
    design = np.stack([d, np.log([r[3] for r in rows])] + [(src == s).astype(float) for s in sources], 1)
    coef, *_ = np.linalg.lstsq(design, ln, rcond=None)
    resid = ln - design @ coef
    fit = {"bases": len(rows), "slope_ln_per_mm": round(float(coef[0]), 5), "ln_pixel_coefficient": round(float(coef[1]), 3),
           "residual_sd_ln": round(float(resid.std()), 4),
           "single_line_slope_ln_per_mm": round(float(np.polyfit(d, ln, 1)[0]), 5),
           "diameter_mm": {"min": round(float(d.min()), 1), "median": round(float(np.median(d)), 1),
                           "max": round(float(d.max()), 1)}}
    for s in sources:
        m = src == s
        fit[s] = {"bases": int(m.sum()), "slope_ln_per_mm": round(float(np.polyfit(d[m], ln[m], 1)[0]), 5),
                  "diameter_mm": [round(float(d[m].min()), 1), round(float(d[m].max()), 1)]}
    print(json.dumps(fit, indent=1))
    if a.out:
        json.dump(fit, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
