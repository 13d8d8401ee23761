#!/usr/bin/python3
"""Trains Lumen's brain extraction model for T1 MR (bundle resources/models/mr_brain_extract).

    /usr/bin/python3 models/training/train_skullstrip.py [--steps 4000] [--out /tmp/mr_brain_extract]

A 3D U-Net (4 levels, 8-16-32-64 channels, instance norm) on 4 mm voxels learns the brain
mask from images synthesised from one head label map (mr_synth.py: Colin27 and its atlases,
mricron-data), with random deformations and contrasts, so that it does not depend on one
scanner's T1 contrast. Each step sees two whole 48^3 windows (192 mm: a head, sometimes cut
by the window's edge, as the inference's sliding window sees it). 4 mm costs little in
accuracy (the reference mask of the evaluation subject, down-sampled to 4 mm and back, keeps
a Dice of 0.994) and is what makes a 3D U-Net trainable on 2 CPU cores. Loss: cross-entropy +
soft Dice. The evaluation subject (insighttoolkit5-examples' KmeansTest T1) is never used
here. Synthesis runs in a second process while the network trains. Seeded; about an hour on
2 CPU cores.
"""
import argparse

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

import fitting
import mr_synth
import nets


def producer(queue, seed, size, spacing, with_csf):
    torch.set_num_threads(1)
    s = mr_synth.Synth(size, spacing, seed=seed, with_csf=with_csf)
    while True:
        queue.put(s.sample())


def dice_loss(logits, mask):
    p = torch.softmax(logits, 1)[:, 1]
    m = mask.float()
    inter = (p * m).sum((1, 2, 3))
    return 1 - ((2 * inter + 1) / (p.sum((1, 2, 3)) + m.sum((1, 2, 3)) + 1)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/mr_brain_extract")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--spacing", type=float, default=4.0)
    # Two heads per step: also what keeps LibTorch's CPU convolutions on their fast path
    # (a batch of one 3D volume runs 3-4 times slower per voxel on 2 cores).
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--brain-only", action="store_true",
                    help="mask = Colin27's BET mask, without the CSF up to the skull (the first shipped definition)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    ctx = mp.get_context("fork")
    queue = ctx.Queue(maxsize=8)
    procs = [ctx.Process(target=producer, args=(queue, a.seed * 100 + i, a.size, a.spacing, not a.brain_only), daemon=True)
             for i in range(a.workers)]
    for p in procs:
        p.start()
    torch.set_num_threads(a.threads)
    # Fixed validation samples (synthetic, other seed).
    vs = mr_synth.Synth(a.size, a.spacing, seed=12345, with_csf=not a.brain_only)
    val = [vs.sample() for _ in range(4)]

    net = nets.UNet(dims=3, cin=1, cout=2, width=8, levels=4)

    def step_loss(net):
        draws = [queue.get() for _ in range(a.batch)]
        x = torch.stack([d[0] for d in draws])
        m = torch.stack([d[1] for d in draws]).long()
        logits = net(x)
        return F.cross_entropy(logits, m) + dice_loss(logits, m)

    def validate(net):
        preds = net(torch.stack([vi for vi, _ in val])).argmax(1).bool()
        d = [2 * (p & vm.bool()).sum().item() / max(p.sum().item() + vm.bool().sum().item(), 1)
             for p, (_, vm) in zip(preds, val)]
        return {"val_dice_synthetic": round(float(np.mean(d)), 4)}

    log, seconds = fitting.fit(net, a.steps, 2e-3, step_loss, validate, 200)
    for p in procs:
        p.terminate()
    fitting.save(net, a.out, a, log, seconds)

if __name__ == "__main__":
    main()
