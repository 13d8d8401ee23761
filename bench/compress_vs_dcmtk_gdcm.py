#!/usr/bin/python3
"""Lossless compression of a real CT series: lumen-cli compress against dcmtk (dcmcjpls for
JPEG-LS, dcmconv +td for deflate) and GDCM (gdcmconv --jpegls / --j2k / --deflated).

Every tool runs on the same input, each file into an empty folder; the per-file tools run
two at a time (xargs -P2), the best they can do on 2 cores; Lumen uses its 2 threads.
Reported: total output bytes, ratio of input bytes to output bytes, wall time (median of
--runs), and whether every output decodes to the input's pixels (pydicom with GDCM).

  bench/compress_vs_dcmtk_gdcm.py [--cli build/release/app/lumen-cli] [--data ../shared/data/ct-head-sinus] [--runs 3]
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pydicom


def folder_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def run_timed(cmd, runs, out):
    times = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        subprocess.run(["sync"])
        t = time.perf_counter()
        subprocess.run(cmd, shell=True, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def same_pixels(src, out):
    for f in sorted(os.listdir(src)):
        a = pydicom.dcmread(os.path.join(src, f)).pixel_array
        b = pydicom.dcmread(os.path.join(out, f)).pixel_array
        if not np.array_equal(a, b):
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default="build/release/app/lumen-cli")
    ap.add_argument("--data", default="../shared/data/ct-head-sinus")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    src = os.path.abspath(a.data)
    cli = os.path.abspath(a.cli)
    n = len(os.listdir(src))
    inb = folder_bytes(src)
    work = tempfile.mkdtemp(prefix="lumen-compress-bench-")
    def per_file(tool):
        return f"cd {src} && ls | xargs -P2 -I{{}} {tool} {{}} @OUT@/{{}}"
    cases = [
        ("JPEG-LS", "Lumen", f"{cli} --threads 2 compress {src} @OUT@ --syntax jpeg-ls"),
        ("JPEG-LS", "dcmcjpls", per_file("dcmcjpls")),
        ("JPEG-LS", "gdcmconv", per_file("gdcmconv --jpegls")),
        ("JPEG 2000", "Lumen", f"{cli} --threads 2 compress {src} @OUT@ --syntax jpeg2000"),
        ("JPEG 2000", "gdcmconv", per_file("gdcmconv --j2k")),
        ("deflate", "Lumen", f"{cli} --threads 2 compress {src} @OUT@ --syntax deflate"),
        ("deflate", "dcmconv +td", per_file("dcmconv +td")),
        ("deflate", "gdcmconv", per_file("gdcmconv --deflated")),
    ]
    print(f"{n} files, {inb} bytes in; median of {a.runs} runs\n")
    print("| syntax | tool | output bytes | ratio | wall s | pixels exact |")
    print("|---|---|---|---|---|---|")
    for syntax, tool, cmd in cases:
        out = os.path.join(work, f"{syntax}-{tool}".replace(" ", "_"))
        t = run_timed(cmd.replace("@OUT@", out), a.runs, out)
        outb = folder_bytes(out)
        print(f"| {syntax} | {tool} | {outb} | {inb / outb:.3f} | {t:.2f} | {'yes' if same_pixels(src, out) else 'NO'} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
