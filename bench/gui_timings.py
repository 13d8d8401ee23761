#!/usr/bin/python3
"""GUI timings on this machine's software OpenGL (Xvfb + Mesa llvmpipe).

usage: bench/gui_timings.py [--lumen build/release/app/lumen] [--series ../shared/data/ct-head-sinus]
                            [--runs 7] [--compare-multisamples 4]

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
5. Brush dab: `lumen --benchmark-segment 200` (see BENCHMARKS.md), median per 10 mm
   sphere dab applied and redrawn. Goal <= 16 ms; undo goal <= 50 ms.
6. `lumen --screenshot out.png --layout mpr SERIES`: wall time of the whole process
   (start, load, every view at full quality, grab, PNG written, exit); median over runs.
   Goal <= 4 s.

With --compare-multisamples N every measurement is repeated with the views forced to N
samples per pixel (by default they draw single-sampled under software OpenGL).
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


def measure(a, env, data, configs):
    """Every measurement of the header for each configuration of the views, interleaved
    (run i of every configuration before run i + 1 of any), so drifts hit all alike."""
    res = {name: {"first": [], "mpr_start": [], "shots": []} for name, _ in configs}

    def run(extra, args, timeout=120):
        return subprocess.run([a.lumen, "--data-dir", data] + extra + args + [a.series], env=env, capture_output=True,
                              text=True, timeout=timeout, check=True).stdout

    for _ in range(a.runs):
        for name, extra in configs:
            t0 = time.time()
            out = run(extra, ["--report-timing"])
            res[name]["first"].append(int(re.search(r"first_image_epoch_ms=(\d+)", out).group(1)) / 1000.0 - t0)
    for _ in range(a.runs):
        for name, extra in configs:
            out = run(extra, ["--report-timing", "--layout", "mpr"])
            m = re.search(r"viewport_first_ms=([\d-]+),([\d-]+),([\d-]+),([\d-]+) refined_3d_ms=(\d+)", out)
            res[name]["mpr_start"].append([int(g) / 1000.0 for g in m.groups()])
            t0 = time.time()
            run(extra, ["--screenshot", os.path.join(data, "mpr.png"), "--layout", "mpr"])
            res[name]["shots"].append(time.time() - t0)
    for name, extra in configs:
        res[name]["scroll"] = float(re.search(r"scroll_step_ms_median=([\d.]+)",
                                              run(extra, ["--benchmark-scroll", "300"], 300)).group(1))
    for name, extra in configs:
        res[name]["mpr"] = float(re.search(r"mpr_crosshair_ms_median=([\d.]+)",
                                           run(extra, ["--benchmark-mpr", "60"], 300)).group(1))
    for name, extra in configs:
        out = run(extra, ["--benchmark-segment", "200"], 300)
        res[name]["dab"] = float(re.search(r"dab_ms_median=([\d.]+)", out).group(1))
        res[name]["undo"] = float(re.search(r"undo_ms_median=([\d.]+)", out).group(1))
    return res


def report(name, r, runs):
    first, mpr_start, shots = r["first"], r["mpr_start"], r["shots"]
    s, p, f = r["scroll"], r["mpr"], statistics.median(first)
    print(f"== views: {name}, {runs} runs of the start-up")
    print(f"process start -> first image: median {f:.3f} s (min {min(first):.3f}, max {max(first):.3f})  "
          f"goal <= 1.5 s  {'ok' if f <= 1.5 else 'MISSED'}")
    print(f"scroll step, 512x512 viewport:  median {s:.1f} ms  goal <= 16 ms  {'ok' if s <= 16 else 'MISSED'}")
    print(f"MPR crosshair move, 3 planes:   median {p:.1f} ms  goal <= 50 ms  {'ok' if p <= 50 else 'MISSED'}")
    print(f"brush dab (10 mm sphere), 512x512: median {r['dab']:.1f} ms  goal <= 16 ms  "
          f"{'ok' if r['dab'] <= 16 else 'MISSED'}; undo {r['undo']:.1f} ms  goal <= 50 ms")
    names = ["axial", "coronal", "sagittal", "3D (draft)", "3D full quality"]
    for i, n in enumerate(names):
        col = [x[i] for x in mpr_start]
        med = statistics.median(col)
        goal = f"goal <= 1.5 s  {'ok' if med <= 1.5 else 'MISSED'}" if i < 4 else "(refines after)"
        print(f"MPR start -> {n:16s} median {med:.2f} s (min {min(col):.2f}, max {max(col):.2f})  {goal}")
    sh = statistics.median(shots)
    print(f"lumen --screenshot --layout mpr: median {sh:.2f} s (min {min(shots):.2f}, max {max(shots):.2f})  "
          f"goal <= 4 s  {'ok' if sh <= 4.0 else 'MISSED'}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--lumen", default=os.path.join(here, "..", "build", "release", "app", "lumen"))
    ap.add_argument("--series", default=os.path.join(here, "..", "..", "shared", "data", "ct-head-sinus"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--compare-multisamples", type=int, metavar="N",
                    help="also measure with the views forced to N samples per pixel (lumen --multisamples N), "
                         "interleaved with the default, and print the ratios")
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="lumen-gui-bench-")
    display = ":97"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "2000x1400x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    env = dict(os.environ, DISPLAY=display)
    configs = [("default", [])]
    if a.compare_multisamples is not None:
        configs.append((f"--multisamples {a.compare_multisamples}", ["--multisamples", str(a.compare_multisamples)]))
    try:
        results = measure(a, env, data, configs)
    finally:
        xvfb.terminate()
        shutil.rmtree(data, ignore_errors=True)
    print(f"series: {a.series}")
    for name, _ in configs:
        report(name, results[name], a.runs)
    if len(configs) == 2:
        d, m = results[configs[0][0]], results[configs[1][0]]
        print(f"== ratio default / {configs[1][0]}: scroll {d['scroll'] / m['scroll']:.2f}, "
              f"MPR move {d['mpr'] / m['mpr']:.2f}, brush dab {d['dab'] / m['dab']:.2f}, "
              f"screenshot {statistics.median(d['shots']) / statistics.median(m['shots']):.2f}")


if __name__ == "__main__":
    main()
