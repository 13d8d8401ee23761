#!/usr/bin/python3
"""Trains Lumen's low-dose CT denoiser (bundle resources/models/ct_denoise).

    /usr/bin/python3 models/training/train_denoiser.py [--steps 2400] [--out /tmp/ct_denoise]

A 2D residual U-Net (3 levels, 32-64-128 channels) learns to take out the noise of a CT
slice. Each training pair is made from a clean base slice (ct_bank) and simulated scans of
it, reconstructed with one random FBP kernel from smooth (Hann) to sharp (ramp): scanners
differ in the grain of their noise as much as in its amount. Two recipes:

  --recipe full-dose (the shipped model): the target is the base at a random "full" dose
    (noise SD 3 to 12 HU in soft tissue), the input the same plus the noise a random
    fraction of that dose adds (1/10 to 1/1.5); MSE. The target keeps its own full-dose
    noise, as a real full-dose scan would.
  --recipe noise-free: the target is the base itself, the input the base scanned at a
    random noise level, 4 to 120 HU SD (log-uniform), blind to that level; the squared error
    divided by the pair's noise variance, so that a 5 HU slice counts as much as a 100 HU
    one. Tried for 2400 steps and not shipped (model card).

Seeded; about 50 minutes on 2 CPU cores either way. Writes model.ts (TorchScript), weights
and a training log.
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

HU_SCALE = 1000.0
SD_RANGE = (4.0, 120.0)  # HU, noise-free recipe: a margin around the 5 to 100 HU evaluated
REFERENCE_SD = 20.0  # HU; the loss weight is 1 at this noise level (and always, full-dose recipe)


def weighted_mse(out, target, weight):
    return (((out - target) ** 2).mean((1, 2, 3)) * weight).mean()


def sample(bank, rng, crop, recipe):
    items = bank["items"]
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
        base = img[box]
        if (base > -500).float().mean() < 0.3:
            continue
        window = rng.uniform(ctsim.SMOOTHEST, ctsim.SHARPEST)  # the scan's kernel: smooth to sharp
        if recipe == "noise-free":
            sd = math.exp(rng.uniform(math.log(SD_RANGE[0]), math.log(SD_RANGE[1])))
            i0 = ct_bank.i0_for(it, sd, window)
            pair = torch.stack([base + ct_bank.noise_at(it, i0, rng.randrange(it["u1"].shape[0]), window, box), base])
        else:
            sd_full = math.exp(rng.uniform(math.log(3.0), math.log(12.0)))
            fraction = math.exp(rng.uniform(math.log(1 / 10), math.log(1 / 1.5)))
            i0 = ct_bank.i0_for(it, sd_full, window)
            a, b = rng.sample(range(it["u1"].shape[0]), 2)
            full = base + ct_bank.noise_at(it, i0, a, window, box)
            low = full + ct_bank.noise_at(it, i0, b, window, box, fraction)
            pair = torch.stack([low, full])
            sd = REFERENCE_SD  # unweighted: the loss is the plain MSE
        k = rng.randrange(4)
        pair = torch.rot90(pair, k, (1, 2))
        if rng.random() < 0.5:
            pair = pair.flip(2)
        return pair, sd


def batch(bank, rng, n, crop, recipe):
    """-> (input, target, per-pair loss weight) for n pairs."""
    pairs, sds = zip(*(sample(bank, rng, crop, recipe) for _ in range(n)))
    b = torch.stack(pairs) / HU_SCALE
    weight = (REFERENCE_SD / torch.tensor(sds)) ** 2
    return b[:, 0:1].contiguous(), b[:, 1:2].contiguous(), weight


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bank", default=os.path.expanduser("~/.cache/lumen-training/ct_bank.pt"))
    ap.add_argument("--out", default="/tmp/ct_denoise")
    ap.add_argument("--recipe", choices=("full-dose", "noise-free"), default="full-dose")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    bank = ct_bank.build(a.bank, seed=0)
    # Hold out a few bases to watch for over-fitting (the real test is the held-out volume).
    items = bank["items"]
    val_idx = set(range(0, len(items), 10))
    train = {"items": [it for i, it in enumerate(items) if i not in val_idx]}
    val = {"items": [it for i, it in enumerate(items) if i in val_idx]}
    vrng = random.Random(1234)
    val_batches = [batch(val, vrng, 32, a.crop, a.recipe) for _ in range(4)]

    net = nets.UNet(dims=2, width=32, levels=3, residual=True)

    def step_loss(net):
        x, y, w = batch(train, rng, a.batch, a.crop, a.recipe)
        return weighted_mse(net(x), y, w)

    def validate(net):
        # Gain in the weighted error: every noise level counts alike.
        w_in = sum(weighted_mse(vx, vy, vw).item() for vx, vy, vw in val_batches) / len(val_batches)
        w_out = sum(weighted_mse(net(vx), vy, vw).item() for vx, vy, vw in val_batches) / len(val_batches)
        return {"val_gain_db": round(10 * math.log10(w_in / w_out), 2)}

    log, seconds = fitting.fit(net, a.steps, 1e-3, step_loss, validate, 250,
                               loss_entry=lambda v: {"train_weighted_mse_hu2": round(v * HU_SCALE ** 2, 2)})
    fitting.save(net, a.out, a, log, seconds)

if __name__ == "__main__":
    main()
