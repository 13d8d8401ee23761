#!/usr/bin/python3
"""Throughput of `lumen-cli batch` on this machine, with 1 and 2 local workers, against a
real PACS (Orthanc on loopback): studies per hour, and where the time goes (retrieve,
inference, report, send). Numbers for docs/SCALING.md; not run in CI.

Three workloads, each a set of copies (new UIDs) of a real series in Orthanc:
  ct    the real head CT (../shared/data/ct-head-sinus, 163 slices of 512 x 512), model
        ct_dose_grade (the shipped classifier: an SR per study)
  mr    the ITK example T1 (insighttoolkit5-examples' KmeansTest, 128 x 128 x 62) written
        as a DICOM MR series, model mr_brain_extract (the shipped segmentation model: a SEG
        and an SR per study)
  ctpipe  the CT copies again, pipeline ct_dose_grade then ct_denoise (its condition
        names every class, so it always runs): a derived series of 163 instances and an SR
        per study; --pipe-copies of them (the denoiser is the slow step)
The reference for retrieval is dcmtk's getscu fetching the same series from the same
Orthanc into a folder (no database): retrieval time is the PACS's, not Lumen's, when the
two agree.

usage: bench/batch_throughput.py [--cli build/release/app/lumen-cli] [--copies 6] [--pipe-copies 3]
                                 [--kinds ct,mr,ctpipe]
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "app"))
from test_net import copy_with_new_uids, start_orthanc  # noqa: E402  (the tests' helpers)
CT = os.path.join(HERE, "..", "..", "shared", "data", "ct-head-sinus")
T1 = "/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz"
HTTP, DICOM = 8142, 4342


def upload(path):
    with open(path, "rb") as f:
        req = urllib.request.Request(f"http://127.0.0.1:{HTTP}/instances", data=f.read(), method="POST")
        urllib.request.urlopen(req, timeout=60).read()


def ct_copies(n, out):
    files = sorted(glob.glob(os.path.join(CT, "*")))
    copies = copy_with_new_uids(files, out, copies=n)
    for p in copies:
        upload(p)
    return [str(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID) for p in copies[::len(files)]]


def mr_copies(n, out):
    """The T1 NIfTI as DICOM MR series (LPS geometry from the RAS affine)."""
    img = nib.load(T1)
    data = np.asarray(img.dataobj).astype(np.uint16)
    a = img.affine
    flip = np.array([-1, -1, 1])
    col = a[:3, 0] * flip
    row = a[:3, 1] * flip
    sx, sy = np.linalg.norm(col), np.linalg.norm(row)
    studies = []
    for c in range(n):
        study, series, frame = generate_uid(), generate_uid(), generate_uid()
        for k in range(data.shape[2]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.PatientName, ds.PatientID = f"BENCH^MR{c}", f"BENCHMR{c}"
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", 1, k + 1
            ds.StudyDate, ds.StudyTime = "20260101", "120000"
            ds.ImagePositionPatient = [float(v) for v in (a[:3, :3] @ [0, 0, k] + a[:3, 3]) * flip]
            ds.ImageOrientationPatient = [float(v) for v in np.concatenate([col / sx, row / sy])]
            ds.PixelSpacing = [float(sy), float(sx)]
            ds.SliceThickness = float(np.linalg.norm(a[:3, 2]))
            ds.Rows, ds.Columns = data.shape[1], data.shape[0]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = np.ascontiguousarray(data[:, :, k].T).tobytes()
            p = os.path.join(out, f"mr{c}-{k:03d}.dcm")
            ds.save_as(p, write_like_original=False)
            upload(p)
        studies.append(study)
    return studies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(HERE, "..", "build", "release", "app", "lumen-cli"))
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--pipe-copies", type=int, default=3)
    ap.add_argument("--kinds", default="ct,mr,ctpipe")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="lumen-batch-bench-")
    env = dict(os.environ, LUMEN_CONFIG_DIR=os.path.join(d, "config"), LUMEN_DATA_DIR=os.path.join(d, "default-data"))
    proc, log = start_orthanc("batch-bench-orthanc", HTTP, DICOM, {})
    try:
        subprocess.run([a.cli, "nodes", "add", "bench", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(DICOM)],
                       env=env, check=True, capture_output=True)
        rows = []
        getscu = {}
        for kind in a.kinds.split(","):
            out = os.path.join(d, "in-" + kind)
            os.makedirs(out)
            if kind == "ctpipe":
                studies = ct_copies(a.pipe_copies, out)
                models = ["ct_dose_grade", "ct_denoise"]
                extra = ["--when", "ct_denoise:ct_dose_grade=full,1/2,1/4,1/8"]
            else:
                studies = ct_copies(a.copies, out) if kind == "ct" else mr_copies(a.copies, out)
                models = ["ct_dose_grade" if kind == "ct" else "mr_brain_extract"]
                extra = []
            # The reference retrieval: getscu of one study into a folder.
            if kind in ("ct", "mr"):
                g = os.path.join(d, "getscu-" + kind)
                os.makedirs(g)
                t0 = time.monotonic()
                subprocess.run(["getscu", "-aec", "ORTHANC", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k",
                                "StudyInstanceUID=" + studies[0], "-od", g, "127.0.0.1", str(DICOM)], check=True,
                               capture_output=True)
                getscu[kind] = (time.monotonic() - t0, len(os.listdir(g)))
            for workers in (1, 2):
                work = os.path.join(d, f"work-{kind}-{workers}")
                args = [a.cli, "batch", "run", "--work", work, "--node", "bench", "--workers", str(workers), *extra]
                for m in models:
                    args += ["-m", m]
                for s in studies:
                    args += ["--study", s]
                t0 = time.monotonic()
                p = subprocess.run(args, env=env, capture_output=True, text=True)
                wall = time.monotonic() - t0
                if p.returncode != 0:
                    raise SystemExit(f"batch failed: {p.stdout}{p.stderr}")
                with open(os.path.join(work, "results.json")) as f:
                    res = json.load(f)
                t = {k: np.mean([r["result"]["timings"][k] for r in res]) for k in
                     ("retrieve_s", "infer_s", "report_s", "send_s", "total_s")}
                sent = np.mean([r["result"]["sent"] for r in res])
                rows.append((kind, "+".join(models), workers, len(studies), wall, 3600 * len(studies) / wall, t, sent))
        print(f"\n{'workload':8} {'models':26} {'workers':>7} {'studies':>7} {'wall s':>7} {'studies/h':>9} "
              f"{'retrieve':>8} {'infer':>7} {'report':>7} {'send':>6} {'per study':>9} {'sent':>5}")
        for kind, model, w, n, wall, rate, t, sent in rows:
            print(f"{kind:8} {model:26} {w:7d} {n:7d} {wall:7.1f} {rate:9.0f} {t['retrieve_s']:8.2f} {t['infer_s']:7.2f} "
                  f"{t['report_s']:7.2f} {t['send_s']:6.2f} {t['total_s']:9.2f} {sent:5.0f}")
        for kind in a.kinds.split(","):
            one = [r for r in rows if r[0] == kind and r[2] == 1][0]
            two = [r for r in rows if r[0] == kind and r[2] == 2][0]
            print(f"{kind}: 2 workers / 1 worker = {two[5] / one[5]:.2f}x")
            if kind in getscu:
                secs, files = getscu[kind]
                print(f"{kind}: retrieval of one study ({files} instances): getscu {secs:.2f} s, Lumen (1 worker, mean) "
                      f"{one[6]['retrieve_s']:.2f} s, ratio {one[6]['retrieve_s'] / secs:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
