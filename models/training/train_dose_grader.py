#!/usr/bin/python3
"""Trains Lumen's CT dose-level grader (bundle resources/models/ct_dose_grade).

    /usr/bin/python3 models/training/train_dose_grader.py [--steps 600] [--out /tmp/ct_dose_grade]

What it grades: the noise of a head CT slice in dose-equivalent steps of a reference
protocol. "full" is a noise SD of REF_SD HU in soft tissue (the pixel SD of the noise, not a
high-pass estimate of it; a standard-dose adult head CT at ~1 mm pixels, any kernel from
smooth to sharp); "1/2", "1/4", "1/8" are the noise of half, a quarter and an eighth of
that dose (SD x sqrt(2), x 2, x 2 sqrt(2)). A single image cannot tell which dose *its own*
scanner used; what it shows is how noisy it is, which is what decides whether the denoiser
helps.

Training slices: ct_bank bases (real CT and Colin27 CT-like slices) with simulated noise of
the class's SD (times a random factor of about +-8 %, as slices of one scan differ), 128 x 128
crops, random flips. Network: nets.NoiseGrader (fully convolutional, attention-pooled), any
slice size. Seeded; about 11 minutes on 2 cores (after ct_bank's build, cached).
"""
import argparse
import math
import os
import random

import torch
import torch.nn.functional as F

import ct_bank
import ctsim
import fitting
import nets

CLASSES = ["full", "1/2", "1/4", "1/8"]
REF_SD = 7.0  # HU, true SD: see the model card (the held-out scan's own noise is of this order)
LO, HI = -100.0, 200.0  # the soft-tissue window the network sees
# Every training view has at least MIN_TISSUE of its area in soft tissue (the bank's mask:
# -20..100 HU over a whole 5 x 5 neighbourhood of clean ~1 mm pixels); at inference a slice
# with less than the same area (8 % of a 128^2 crop at 0.95 mm, 12 cm^2) is not graded (the
# bundle's lumen.json slice_evidence; its 3 mm box mean stands in for the clean base, so
# noise does not break the tissue up): above the vertex a grade would be a guess.
MIN_TISSUE = 0.08
SLICE_EVIDENCE = {"range": [-20, 100], "smoothing_mm": 3, "neighbourhood_mm": 5, "min_area_mm2": 1200}


def base_noise(item):
    m = item["mask"].numpy()
    if m.sum() < 200:
        return 0.0
    return ctsim.measure_noise(item["image"].numpy(), m) or 0.0


def sample(items, rng, crop, gen_jitter=0.08):
    while True:
        it = items[rng.randrange(len(items))]
        if it["moments"] is None:
            continue
        img = it["image"]
        h, w = img.shape
        if h < crop or w < crop:
            continue
        y, x = rng.randrange(h - crop + 1), rng.randrange(w - crop + 1)
        box = (slice(y, y + crop), slice(x, x + crop))
        if (it["mask"][box].float().mean() < MIN_TISSUE):
            continue  # no soft tissue to read noise from
        k = rng.randrange(4)
        sd = REF_SD * 2 ** (k / 2) * math.exp(rng.gauss(0.0, gen_jitter))
        add = math.sqrt(max(sd ** 2 - it["base_sd"] ** 2, 0.25))
        window = rng.uniform(ctsim.SMOOTHEST, ctsim.SHARPEST)
        i0 = ct_bank.i0_for(it, add, window)
        im = img[box] + ct_bank.noise_at(it, i0, rng.randrange(it["u1"].shape[0]), window, box)
        im = torch.rot90(im, rng.randrange(4), (0, 1))
        if rng.random() < 0.5:
            im = im.flip(1)
        return ((im.clamp(LO, HI) - LO) / (HI - LO))[None], k


def batch(items, rng, n, crop):
    xs, ys = zip(*[sample(items, rng, crop) for _ in range(n)])
    return torch.stack(xs), torch.tensor(ys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bank", default=os.path.expanduser("~/.cache/lumen-training/ct_bank.pt"))
    ap.add_argument("--out", default="/tmp/ct_dose_grade")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    bank = ct_bank.build(a.bank, seed=0)
    items = bank["items"]
    for it in items:
        it["base_sd"] = base_noise(it)
    val_idx = set(range(0, len(items), 10))
    train = [it for i, it in enumerate(items) if i not in val_idx]
    val = [it for i, it in enumerate(items) if i in val_idx]
    vrng = random.Random(99)
    val_batches = [batch(val, vrng, 64, a.crop) for _ in range(4)]

    net = nets.NoiseGrader(classes=len(CLASSES))

    def step_loss(net):
        x, y = batch(train, rng, a.batch, a.crop)
        return F.cross_entropy(net(x), y)

    def validate(net):
        correct = sum(int((net(vx).argmax(1) == vy).sum()) for vx, vy in val_batches)
        return {"val_crop_accuracy": round(correct / sum(len(vy) for _, vy in val_batches), 4)}

    log, seconds = fitting.fit(net, a.steps, 2e-3, step_loss, validate, 250)
    fitting.save(net, a.out, a, log, seconds, classes=CLASSES, ref_sd_hu=REF_SD, window=[LO, HI])

if __name__ == "__main__":
    main()
