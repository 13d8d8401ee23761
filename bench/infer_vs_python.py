#!/usr/bin/python3
"""Benchmark: Lumen's C++ inference pipeline vs two Python baselines, same TorchScript model,
same input, same threads, in one run:

  monai-style   as MONAI users run a bundle: torch.jit.load of the bundle's model.ts, eval,
                no_grad, MONAI's sliding_window_inference with the bundle's sw_batch_size (4)
  best-effort   the fastest plain PyTorch we know for this model on this machine: the model
                frozen (torch.jit.freeze, batch norm folded) and torch.jit.optimize_for_inference
                (oneDNN where it applies), inference_mode, the same window batch as Lumen
                uses on the CPU (1)

usage: bench/infer_vs_python.py [--cli build/release/app/lumen-cli] [--threads 2] [--device cpu]
                                [--size 256,256,160] [--runs 1]

The model is MONAI's 3D UNet (channels 16-32-64-128-256, strides 2, two residual units,
batch norm, PReLU), re-implemented here in plain PyTorch (MONAI is not packaged for Debian)
and saved as TorchScript with seeded random weights. The input is the real head CT
(../shared/data/ct-head-sinus, else the bundled sample) resampled to --size and scaled to
[0, 1]. Every side runs 96^3 windows, overlap 0.5, constant blending, softmax + argmax
(MONAI is not packaged for Debian: its sliding_window_inference is re-implemented from its
documentation in sliding_window_reference.py, tested against Lumen's in tests/models).
Reported: wall time of each process (median), peak RSS (largest), the ratios against each
baseline with the goals (time <= 0.8 x best-effort, RSS <= 0.6 x either), Lumen's time
outside the network's forward passes, and argmax agreement with each baseline.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Conv(nn.Sequential):
    """MONAI Convolution with ADN ordering "NDA": conv, batch norm, PReLU."""

    def __init__(self, cin, cout, stride=1, transposed=False, conv_only=False):
        layers = [nn.ConvTranspose3d(cin, cout, 3, stride, padding=1, output_padding=stride - 1) if transposed
                  else nn.Conv3d(cin, cout, 3, stride, padding=1)]
        if not conv_only:
            layers += [nn.BatchNorm3d(cout), nn.PReLU()]
        super().__init__(*layers)


class ResidualUnit(nn.Module):
    def __init__(self, cin, cout, stride, subunits, last_conv_only=False):
        super().__init__()
        units, c, s = [], cin, stride
        for i in range(subunits):
            units.append(Conv(c, cout, s, conv_only=last_conv_only and i == subunits - 1))
            c, s = cout, 1
        self.conv = nn.Sequential(*units)
        if stride != 1 or cin != cout:
            k = 3 if stride != 1 else 1
            self.residual = nn.Conv3d(cin, cout, k, stride, padding=k // 2)
        else:
            self.residual = nn.Identity()

    def forward(self, x):
        return self.conv(x) + self.residual(x)


class Skip(nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return torch.cat([x, self.sub(x)], dim=1)


def unet(cin=1, cout=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), res_units=2):
    def block(inc, outc, ch, st, top):
        c, s = ch[0], st[0]
        if len(ch) > 2:
            sub, upc = block(c, c, ch[1:], st[1:], False), c * 2
        else:
            sub, upc = ResidualUnit(c, ch[1], 1, res_units), c + ch[1]
        down = ResidualUnit(inc, c, s, res_units)
        up = nn.Sequential(Conv(upc, outc, s, transposed=True), ResidualUnit(outc, outc, 1, 1, last_conv_only=top))
        return nn.Sequential(down, Skip(sub), up)

    return block(cin, cout, channels, strides, True)


def write_bundle(d, threads):
    torch.manual_seed(0)
    net = unet().eval()
    # Non-trivial batch-norm statistics, so the output is not constant.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    os.makedirs(os.path.join(d, "configs"))
    os.makedirs(os.path.join(d, "models"))
    torch.jit.script(net).save(os.path.join(d, "models", "model.ts"))
    meta = {"name": "bench_unet", "version": "1.0", "network_data_format": {
        "inputs": {"image": {"type": "image", "format": "magnitude", "num_channels": 1, "spatial_shape": [96, 96, 96]}},
        "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": 2,
                             "channel_def": {"0": "background", "1": "foreground"}}}}}
    inference = {"inferer": {"_target_": "SlidingWindowInferer", "roi_size": [96, 96, 96], "sw_batch_size": 4,
                             "overlap": 0.5},
                 "postprocessing": {"_target_": "Compose", "transforms": [
                     {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                     {"_target_": "AsDiscreted", "keys": "pred", "argmax": True}]}}
    json.dump(meta, open(os.path.join(d, "configs", "metadata.json"), "w"))
    json.dump(inference, open(os.path.join(d, "configs", "inference.json"), "w"))


def make_input(path, size, cli):
    series = os.path.join(HERE, "..", "..", "shared", "data", "ct-head-sinus")
    if not os.path.isdir(series):
        series = os.path.join(HERE, "..", "resources", "sample", "ct-head-sinus")
    ct = os.path.join(os.path.dirname(path), "ct.nii")
    subprocess.run([cli, "convert", series, ct], check=True, capture_output=True)
    img = nib.load(ct)
    x = torch.from_numpy(np.asarray(img.dataobj, dtype=np.float32))[None, None]
    x = torch.nn.functional.interpolate(x, size=size, mode="trilinear", align_corners=True)[0, 0]
    x = ((x.clamp(-1000, 2000) + 1000) / 3000).numpy()
    aff = img.affine.copy()
    for a in range(3):
        aff[:3, a] *= (img.shape[a] - 1) / (size[a] - 1)
    nib.save(nib.Nifti1Image(x.astype(np.float32), aff), path)


PYTHON_RUN = r'''
import sys, time, json, numpy as np, nibabel as nib, torch
sys.path.insert(0, {here!r})
from sliding_window_reference import sliding_window_inference
torch.set_num_threads({threads})
t0 = time.perf_counter()
net = torch.jit.load({model!r}).eval()
best_effort = {best_effort!r}
if best_effort:
    net = torch.jit.optimize_for_inference(torch.jit.freeze(net))
img = nib.load({input!r})
x = torch.from_numpy(np.asarray(img.dataobj, dtype=np.float32))[None, None]
fwd = [0.0]
with (torch.inference_mode() if best_effort else torch.no_grad()):
    y = sliding_window_inference(x, [96, 96, 96], {batch}, net, overlap=0.5, mode="constant", forward_time=fwd)
    labels = torch.softmax(y, 1).argmax(1)[0].to(torch.uint8).numpy()
nib.save(nib.Nifti1Image(labels, img.affine), {output!r})
json.dump({{"seconds": time.perf_counter() - t0, "forward_seconds": fwd[0]}}, open({report!r}, "w"))
'''


def run_measured(cmd, env=None):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        if env:
            os.environ.update(env)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvp(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - t0, usage.ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(HERE, "..", "build", "release", "app", "lumen-cli"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="256,256,160")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    size = [int(v) for v in a.size.split(",")]
    work = tempfile.mkdtemp(prefix="lumen-infer-bench-")
    bundle = os.path.join(work, "bench_unet")
    write_bundle(bundle, a.threads)
    inp = os.path.join(work, "input.nii")
    make_input(inp, size, a.cli)
    baselines = {"monai-style": dict(best_effort=False, batch=4), "best-effort": dict(best_effort=True, batch=1)}
    lumen, python = [], {k: [] for k in baselines}
    for _ in range(a.runs):
        t, rss = run_measured([a.cli, "infer", "-m", bundle, inp, "-o", os.path.join(work, "lumen.nii"),
                               "--device", a.device, "--threads", str(a.threads), "--trust",
                               "--report", os.path.join(work, "lumen.json")])
        lumen.append((t, rss, json.load(open(os.path.join(work, "lumen.json")))))
        for name, opts in baselines.items():
            script = PYTHON_RUN.format(here=HERE, threads=a.threads, model=os.path.join(bundle, "models", "model.ts"),
                                       input=inp, output=os.path.join(work, name + ".nii"),
                                       report=os.path.join(work, name + ".json"), **opts)
            t, rss = run_measured([sys.executable, "-c", script])
            python[name].append((t, rss, json.load(open(os.path.join(work, name + ".json")))))
    a_lab = np.asarray(nib.load(os.path.join(work, "lumen.nii")).dataobj)
    agreement = {k: float((a_lab == np.asarray(nib.load(os.path.join(work, k + ".nii")).dataobj)).mean())
                 for k in baselines}
    med = statistics.median
    lt, lr = med(x[0] for x in lumen), max(x[1] for x in lumen)
    pt = {k: med(x[0] for x in v) for k, v in python.items()}
    pr = {k: max(x[1] for x in v) for k, v in python.items()}
    lrep = lumen[-1][2]
    outside = 1.0 - lrep["forward_seconds"] / lt
    ok = lambda c: "ok" if c else "MISSED"
    print(f"input {size[0]}x{size[1]}x{size[2]}, UNet 16-32-64-128-256, 96^3 windows, overlap 0.5, "
          f"{a.threads} thread(s), device {lrep['device']}, {lrep['windows']} windows, {a.runs} run(s)")
    print(f"{'':30s}{'Lumen':>9s}{'monai-style':>13s}{'best-effort':>13s}")
    print(f"{'wall time (s)':30s}{lt:9.1f}{pt['monai-style']:13.1f}{pt['best-effort']:13.1f}")
    print(f"{'peak RSS (MiB)':30s}{lr / 2**20:9.0f}{pr['monai-style'] / 2**20:13.0f}{pr['best-effort'] / 2**20:13.0f}")
    print(f"{'time in forward passes (s)':30s}{lrep['forward_seconds']:9.1f}"
          f"{python['monai-style'][-1][2]['forward_seconds']:13.1f}{python['best-effort'][-1][2]['forward_seconds']:13.1f}")
    print(f"{'argmax agreement with Lumen':30s}{'':9s}{agreement['monai-style'] * 100:12.3f}%"
          f"{agreement['best-effort'] * 100:12.3f}%")
    print("ratios (Lumen / baseline)")
    for k in baselines:
        print(f"  time vs {k:12s} {lt / pt[k]:5.2f}" + (f"   goal <= 0.8  {ok(lt <= 0.8 * pt[k])}" if k == "best-effort" else ""))
    for k in baselines:
        print(f"  RSS  vs {k:12s} {lr / pr[k]:5.2f}   goal <= 0.6  {ok(lr <= 0.6 * pr[k])}")
    print(f"{'Lumen time outside forward':30s}{outside * 100:8.1f}%   goal <= 10%  {ok(outside <= 0.10)}")
    # The same inside the engine (pre-processing, tiling, stitching, post-processing), without
    # the fixed costs of the process: loading LibTorch, the model, reading and writing files.
    engine = 1.0 - lrep["forward_seconds"] / lrep["seconds"]
    print(f"{'  of which in the engine':30s}{engine * 100:8.1f}%  (engine {lrep['seconds']:.2f} s of {lt:.2f} s)")
    for k in baselines:
        print(f"argmax agreement vs {k}: {agreement[k] * 100:.3f}%  goal >= 99.9%  {ok(agreement[k] >= 0.999)}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
