#!/usr/bin/python3
"""Trains Lumen's brain extraction model for T1 MR (bundle resources/models/mr_brain_extract).

    /usr/bin/python3 models/training/train_skullstrip.py [--steps 1000] [--out /tmp/mr_brain_extract]

A 3D U-Net (4 levels, 8-16-32-64 channels, instance norm) on 2 mm voxels learns the brain
mask from images synthesised from one head label map (mr_synth.py: Colin27 and its atlases,
mricron-data), with random deformations and contrasts, so that it does not depend on one
scanner's T1 contrast. Loss: cross-entropy + soft Dice. The evaluation subject
(insighttoolkit5-examples' KmeansTest T1) is never used here. Synthesis runs in a second
process while the network trains. Seeded; about an hour on 2 CPU cores.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

import mr_synth
import nets


def producer(queue, seed, size, spacing):
    torch.set_num_threads(1)
    s = mr_synth.Synth(size, spacing, seed=seed)
    while True:
        queue.put(s.sample())


def crops(img, mask, crop, n, gen):
    """n random crop x crop x crop blocks of one synthesised head. Training on blocks smaller
    than the head is what makes a 3D U-Net affordable on 2 CPU cores (the network is fully
    convolutional; inference slides the same window over the whole head)."""
    size = img.shape[-1]
    out_i, out_m = [], []
    for _ in range(n):
        o = [int(torch.randint(0, size - crop + 1, (1,), generator=gen)) for _ in range(3)]
        sl = (slice(o[0], o[0] + crop), slice(o[1], o[1] + crop), slice(o[2], o[2] + crop))
        out_i.append(img[(slice(None),) + sl])
        out_m.append(mask[sl])
    return torch.stack(out_i), torch.stack(out_m).long()


def dice_loss(logits, mask):
    p = torch.softmax(logits, 1)[:, 1]
    m = mask.float()
    inter = (p * m).sum((1, 2, 3))
    return 1 - ((2 * inter + 1) / (p.sum((1, 2, 3)) + m.sum((1, 2, 3)) + 1)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/mr_brain_extract")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2, help="crops per step, all from one synthesised head")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    ctx = mp.get_context("fork")
    queue = ctx.Queue(maxsize=8)
    procs = [ctx.Process(target=producer, args=(queue, a.seed * 100 + i, a.size, a.spacing), daemon=True)
             for i in range(a.workers)]
    for p in procs:
        p.start()
    torch.set_num_threads(a.threads)
    # Fixed validation samples (synthetic, other seed).
    vs = mr_synth.Synth(a.size, a.spacing, seed=12345)
    val = [vs.sample() for _ in range(4)]

    net = nets.UNet(dims=3, cin=1, cout=2, width=8, levels=4)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.steps, pct_start=0.05)
    os.makedirs(a.out, exist_ok=True)
    log = []
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        net.train()
        img, mask = queue.get()
        x, m = crops(img, mask, a.crop, a.batch, gen)
        logits = net(x)
        loss = F.cross_entropy(logits, m) + dice_loss(logits, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == a.steps:
            net.eval()
            with torch.no_grad():
                d = []
                for vi, vm in val:
                    pred = net(vi[None]).argmax(1)[0].bool()
                    vm = vm.bool()
                    d.append(2 * (pred & vm).sum().item() / max(pred.sum().item() + vm.sum().item(), 1))
            entry = {"step": step, "minutes": round((time.time() - t0) / 60, 1), "loss": round(loss.item(), 4),
                     "val_dice_synthetic": round(float(np.mean(d)), 4)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
    for p in procs:
        p.terminate()
    net.eval()
    torch.save(net.state_dict(), os.path.join(a.out, "weights.pt"))
    torch.jit.script(net).save(os.path.join(a.out, "model.ts"))
    json.dump({"args": vars(a), "log": log, "seconds": time.time() - t0}, open(os.path.join(a.out, "training.json"), "w"),
              indent=1)
    print("wrote", os.path.join(a.out, "model.ts"))


if __name__ == "__main__":
    main()
