#!/usr/bin/python3
"""Benchmark: DICOM series -> uncompressed NIfTI, Lumen vs dcm2niix, in one session.

usage: bench/convert_vs_dcm2niix.py [--cli build/release/app/lumen-cli]
                                    [--series ../shared/data/ct-head-sinus] [--runs 9]

Both tools read the same folder (warm page cache: one untimed run of each first) and
write to an empty folder; `sync` runs before every timed run so neither pays for the
other's write-back. Runs alternate between the tools. Reported: median wall time of the
whole process, Lumen's own load time (scan + plan + pixels, from --timing), peak RSS
(ru_maxrss of the child), and how Lumen's load time scales from 1 to 2 threads.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_with_rss(cmd):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        errfd = os.open(ERR_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(errfd, 2)
        os.execvp(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    err = open(ERR_FILE).read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err}")
    return wall, usage.ru_maxrss * 1024, err


ERR_FILE = os.path.join(tempfile.gettempdir(), f"lumen-bench-{os.getpid()}.err")


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    subprocess.run(["sync"], check=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(here, "..", "build", "release", "app", "lumen-cli"))
    ap.add_argument("--series", default=os.path.join(here, "..", "..", "shared", "data", "ct-head-sinus"))
    ap.add_argument("--runs", type=int, default=9)
    a = ap.parse_args()
    if not os.path.isdir(a.series):
        raise SystemExit(f"series folder not found: {a.series}")
    if not shutil.which("dcm2niix"):
        raise SystemExit("dcm2niix not installed (packaging/install-deps.sh installs it)")
    out = tempfile.mkdtemp(prefix="lumen-bench-")
    lumen_out = os.path.join(out, "lumen")
    ref_out = os.path.join(out, "dcm2niix")

    def lumen(threads=2):
        fresh(lumen_out)
        wall, rss, err = run_with_rss([a.cli, "--threads", str(threads), "convert", "--timing", a.series,
                                       os.path.join(lumen_out, "ct.nii")])
        m = re.search(r"load_ms=([\d.]+) write_ms=([\d.]+)", err)
        return wall, rss, float(m.group(1)) / 1000, float(m.group(2)) / 1000

    def dcm2niix():
        fresh(ref_out)
        wall, rss, _ = run_with_rss(["dcm2niix", "-z", "n", "-f", "ref", "-o", ref_out, a.series])
        return wall, rss

    lumen()
    dcm2niix()  # warm the page cache for both
    L, D = [], []
    for i in range(a.runs):
        if i % 2 == 0:
            L.append(lumen())
            D.append(dcm2niix())
        else:
            D.append(dcm2niix())
            L.append(lumen())
    one = [lumen(threads=1)[2] for _ in range(a.runs)]
    two = [lumen(threads=2)[2] for _ in range(a.runs)]

    vol_bytes = os.path.getsize(os.path.join(lumen_out, "ct.nii")) - 352
    med = statistics.median
    lw, lr, ll, lwr = med(x[0] for x in L), max(x[1] for x in L), med(x[2] for x in L), med(x[3] for x in L)
    dw, dr = med(x[0] for x in D), max(x[1] for x in D)
    rss_goal = 1.5 * vol_bytes + 60 * 2**20
    n = len(os.listdir(a.series))
    print(f"series: {a.series} ({n} files), volume {vol_bytes / 2**20:.1f} MiB, {a.runs} runs each, median")
    print(f"{'':28s}{'Lumen':>10s}{'dcm2niix':>10s}{'ratio':>8s}  goal")
    print(f"{'wall time, load + write (s)':28s}{lw:10.3f}{dw:10.3f}{lw / dw:8.2f}  < 1.0  {'ok' if lw < dw else 'MISSED'}")
    print(f"{'Lumen load only (s)':28s}{ll:10.3f}{dw:10.3f}{ll / dw:8.2f}  <= 0.60 {'ok' if ll <= 0.6 * dw else 'MISSED'}")
    print(f"{'Lumen write only (s)':28s}{lwr:10.3f}")
    print(f"{'peak RSS (MiB)':28s}{lr / 2**20:10.1f}{dr / 2**20:10.1f}{lr / dr:8.2f}  <= {rss_goal / 2**20:.0f} MiB "
          f"{'ok' if lr <= rss_goal else 'MISSED'}")
    print(f"load time, 1 thread {med(one):.3f} s, 2 threads {med(two):.3f} s: speed-up {med(one) / med(two):.2f}x")
    shutil.rmtree(out, ignore_errors=True)
    os.remove(ERR_FILE) if os.path.exists(ERR_FILE) else None


if __name__ == "__main__":
    main()
