#!/usr/bin/python3
"""GUI timings on this machine's software OpenGL (Xvfb + Mesa llvmpipe).

usage: bench/gui_timings.py [--lumen build/release/app/lumen] [--series ../shared/data/ct-head-sinus]
                            [--runs 7]

1. Time from process start to the first image on screen: the script notes the time,
   starts `lumen --report-timing SERIES`, which prints the wall-clock time at which the
   first frame holding the image was drawn; median over runs. Goal <= 1.5 s.
2. Scroll step: `lumen --benchmark-scroll 300` renders 300 scroll steps in a 512 x 512
   viewport (re-slice, window/level, annotations, GPU finish); median per step. Goal <= 16 ms.
3. MPR: `lumen --benchmark-mpr 60` moves the crosshair to random points and redraws the
   three 512 x 512 planes; median per move. Goal <= 50 ms.
4. MPR layout at start: `lumen --report-timing --layout mpr SERIES` prints, for each
   viewport (axial, coronal, sagittal, 3D), when it first drew a picture of the series (the
   3D view's quick unshaded draft counts), and when the 3D view's full-quality frame was
   drawn; median over runs. Goal: every viewport <= 1.5 s.
5. `lumen --screenshot out.png --layout mpr SERIES`: wall time of the whole process
   (start, load, every view at full quality, grab, PNG written, exit); median over runs.
   Goal <= 4 s.

Xvfb is started once by this script (its start-up is not counted).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--lumen", default=os.path.join(here, "..", "build", "release", "app", "lumen"))
    ap.add_argument("--series", default=os.path.join(here, "..", "..", "shared", "data", "ct-head-sinus"))
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="lumen-gui-bench-")
    display = ":97"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "2000x1400x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    env = dict(os.environ, DISPLAY=display)
    base = [a.lumen, "--data-dir", data]
    try:
        first = []
        for _ in range(a.runs):
            t0 = time.time()
            out = subprocess.run(base + ["--report-timing", a.series], env=env, capture_output=True, text=True,
                                 timeout=120).stdout
            m = re.search(r"first_image_epoch_ms=(\d+)", out)
            first.append(int(m.group(1)) / 1000.0 - t0)
        mpr_start, shots = [], []
        for _ in range(a.runs):
            out = subprocess.run(base + ["--report-timing", "--layout", "mpr", a.series], env=env, capture_output=True,
                                 text=True, timeout=120).stdout
            m = re.search(r"viewport_first_ms=([\d-]+),([\d-]+),([\d-]+),([\d-]+) refined_3d_ms=(\d+)", out)
            mpr_start.append([int(g) / 1000.0 for g in m.groups()])
            png = os.path.join(data, "mpr.png")
            t0 = time.time()
            subprocess.run(base + ["--screenshot", png, "--layout", "mpr", a.series], env=env, check=True,
                           capture_output=True, timeout=120)
            shots.append(time.time() - t0)
        scroll = subprocess.run(base + ["--benchmark-scroll", "300", a.series], env=env, capture_output=True, text=True,
                                timeout=300).stdout
        mpr = subprocess.run(base + ["--benchmark-mpr", "60", a.series], env=env, capture_output=True, text=True,
                             timeout=300).stdout
    finally:
        xvfb.terminate()
        shutil.rmtree(data, ignore_errors=True)
    s = float(re.search(r"scroll_step_ms_median=([\d.]+)", scroll).group(1))
    p = float(re.search(r"mpr_crosshair_ms_median=([\d.]+)", mpr).group(1))
    f = statistics.median(first)
    print(f"series: {a.series}, {a.runs} runs of the start-up")
    print(f"process start -> first image: median {f:.3f} s (min {min(first):.3f}, max {max(first):.3f})  "
          f"goal <= 1.5 s  {'ok' if f <= 1.5 else 'MISSED'}")
    print(f"scroll step, 512x512 viewport:  median {s:.1f} ms  goal <= 16 ms  {'ok' if s <= 16 else 'MISSED'}")
    print(f"MPR crosshair move, 3 planes:   median {p:.1f} ms  goal <= 50 ms  {'ok' if p <= 50 else 'MISSED'}")
    names = ["axial", "coronal", "sagittal", "3D (draft)", "3D full quality"]
    for i, n in enumerate(names):
        col = [r[i] for r in mpr_start]
        med = statistics.median(col)
        goal = f"goal <= 1.5 s  {'ok' if med <= 1.5 else 'MISSED'}" if i < 4 else "(refines after)"
        print(f"MPR start -> {n:16s} median {med:.2f} s (min {min(col):.2f}, max {max(col):.2f})  {goal}")
    sh = statistics.median(shots)
    print(f"lumen --screenshot --layout mpr: median {sh:.2f} s (min {min(shots):.2f}, max {max(shots):.2f})  "
          f"goal <= 4 s  {'ok' if sh <= 4.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
