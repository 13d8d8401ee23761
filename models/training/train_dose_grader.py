#!/usr/bin/python3
"""Trains Lumen's CT dose-level grader (bundle resources/models/ct_dose_grade).

    /usr/bin/python3 models/training/train_dose_grader.py [--steps 1500] [--out /tmp/ct_dose_grade]

What it grades: the noise of a head CT slice in dose-equivalent steps of a reference
protocol. "full" is a noise SD of REF_SD HU in soft tissue (the pixel SD of the noise, not a
high-pass estimate of it; a standard-dose adult head CT at ~1 mm pixels, any kernel from
smooth to sharp); "1/2", "1/4", "1/8" are the noise of half, a quarter and an eighth of
that dose (SD x sqrt(2), x 2, x 2 sqrt(2)). A single image cannot tell which dose *its own*
scanner used; what it shows is how noisy it is, which is what decides whether the denoiser
helps.

How: the network (nets.NoiseLevelGrader: fully convolutional, attention-pooled, any slice
size) estimates the noise SD in HU; the grade is the bin of ln SD its estimate lies in (bins
of equal width centred on the classes' SDs), so more noise can never read as a better grade
unless the estimate itself falls. The bundle grades the estimate referred to a head of
REF_DIAMETER_MM (lumen.json estimate.size_reference; its slope from fit_size_reference.py):
at one dose a larger slice is noisier, and without that a series' large slices would grade
a step below its small ones. Trained on SDs drawn log-uniformly over SD_RANGE, wider
than the classes, so that the estimate is also right for noise outside them; the bundle
says "outside the range the model knows" for an estimate beyond KNOWN_RANGE, which lies
inside SD_RANGE by about 20 % at either end (an estimate saturates near the edges of what it
was trained on).

Training slices: ct_bank bases (real CT and Colin27 CT-like slices) with simulated noise,
random reconstruction kernel from smooth to sharp, 128 x 128 crops, random rotations and
flips; loss: the absolute error of ln SD. After training, the logistic spread of the class
probabilities is set from the validation crops' errors. Seeded; the shipped 1500 steps took
84 minutes on 2 cores that were partly busy with a build (after ct_bank's build, cached).
"""
import argparse
import math
import os
import random

import torch

import ct_bank
import ctsim
import fitting
import nets

CLASSES = ["full", "1/2", "1/4", "1/8"]
REF_SD = 7.0  # HU, true SD: see the model card (the held-out scan's own noise is of this order)
# ... in a head of this water-equivalent diameter: the classes grade the noise referred to it
# (lumen.json estimate.size_reference, slope from fit_size_reference.py); the held-out scan's
# mean over the slices the bundle grades (180.5 mm), like REF_SD that scan's (model card).
REF_DIAMETER_MM = 180.0
CENTRES = [REF_SD * 2 ** (k / 2) for k in range(len(CLASSES))]  # HU: SD x sqrt(2) per halving of the dose
CLASS_EDGES = [REF_SD * 2 ** (k / 2 + 0.25) for k in range(len(CLASSES) - 1)]  # HU: the bins' edges
SD_RANGE = (2.5, 60.0)   # HU, what training draws from (log-uniform)
KNOWN_RANGE = (3.0, 48.0)  # HU, where the bundle grades (lumen.json estimate.known_range)
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


def sample(items, rng, crop, sd=None):
    """-> (crop scaled to [0, 1] with a channel axis, true noise SD in HU). sd: the SD to
    simulate (None: log-uniform over SD_RANGE)."""
    want = sd
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
        sd = want or math.exp(rng.uniform(math.log(SD_RANGE[0]), math.log(SD_RANGE[1])))
        if it["base_sd"] > 0.25 * sd:
            continue  # the base's own remaining noise would be a visible part of the total
        add = math.sqrt(sd ** 2 - it["base_sd"] ** 2)
        window = rng.uniform(ctsim.SMOOTHEST, ctsim.SHARPEST)
        i0 = ct_bank.i0_for(it, add, window)
        im = img[box] + ct_bank.noise_at(it, i0, rng.randrange(it["u1"].shape[0]), window, box)
        im = torch.rot90(im, rng.randrange(4), (0, 1))
        if rng.random() < 0.5:
            im = im.flip(1)
        return ((im.clamp(LO, HI) - LO) / (HI - LO))[None], sd


def batch(items, rng, n, crop, sds=None):
    xs, ys = zip(*[sample(items, rng, crop, sds[i % len(sds)] if sds else None) for i in range(n)])
    return torch.stack(xs), torch.tensor(ys, dtype=torch.float32)[:, None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bank", default=os.path.expanduser("~/.cache/lumen-training/ct_bank.pt"))
    ap.add_argument("--out", default="/tmp/ct_dose_grade")
    ap.add_argument("--steps", type=int, default=1500)
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
    # Validation: the class centres and the known range's ends and beyond, every base kind.
    val_sds = CENTRES + [SD_RANGE[0], KNOWN_RANGE[0], 5.0, 30.0, KNOWN_RANGE[1], SD_RANGE[1]]
    val_batches = [batch(val, vrng, 60, a.crop, val_sds) for _ in range(4)]

    net = nets.NoiseLevelGrader(CENTRES)

    def step_loss(net):
        x, y = batch(train, rng, a.batch, a.crop)
        return (net.estimate(x) - y.log()).abs().mean()

    def errors(net):
        return torch.cat([(net.estimate(vx) - vy.log())[:, 0] for vx, vy in val_batches])

    def validate(net):
        e = errors(net)
        return {"val_median_abs_error_pct": round(100 * float(e.abs().median().expm1()), 2),
                "val_p90_abs_error_pct": round(100 * float(e.abs().quantile(0.9).expm1()), 2)}

    log, seconds = fitting.fit(net, a.steps, 2e-3, step_loss, validate, 250)
    # A logistic of the validation errors' SD: class probabilities that say how sure one
    # 128 x 128 crop is (a whole slice has more tissue and is surer).
    net.eval()
    with torch.no_grad():
        e = errors(net)
        net.spread.fill_(max(float(e.std()) * math.sqrt(3) / math.pi, 0.02))
        correct = sum(int((net(vx)[:, :-1].argmax(1) == class_of(vy[:, 0])).sum()) for vx, vy in val_batches)
    print(f"spread {float(net.spread):.4f}; validation crops graded right {correct}/{len(e)}", flush=True)
    fitting.save(net, a.out, a, log, seconds, classes=CLASSES, ref_sd_hu=REF_SD, centres_hu=CENTRES,
                 sd_range_hu=list(SD_RANGE), known_range_hu=list(KNOWN_RANGE), spread=float(net.spread),
                 val_crop_accuracy=round(correct / len(e), 4), window=[LO, HI])


def class_of(sd):
    """The class whose bin of ln SD holds `sd` (HU; the outer bins open-ended)."""
    return torch.bucketize(sd, torch.tensor(CLASS_EDGES))

if __name__ == "__main__":
    main()
