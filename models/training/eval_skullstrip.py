#!/usr/bin/python3
"""Evaluates brain extraction with Lumen's C++ engine (`lumen-cli infer`) on a real T1 MR
that no training label map came from: insighttoolkit5-examples' KmeansTest T1 (128 x 128 x 62,
2 x 2 x 3 mm) and its skull-stripped reference (non-zero voxels = brain).

    /usr/bin/python3 models/training/eval_skullstrip.py [--check]
        [--cli build/release/app/lumen-cli] [--model resources/models/mr_brain_extract] [--out DIR]

Reports Dice and the 95th percentile of the symmetric surface distance (HD95, mm) for the
network and for a classical baseline (threshold, erosion, largest component, dilation,
closing, hole filling), whose threshold and radii are tuned on this very volume (the most
favourable setting it can have). --check fails (exit 1) below the floors recorded in the
bundle's docs/metrics.json. The volume is small, so CI runs this whole evaluation.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import evaluation  # noqa: E402
DATA = "/usr/share/doc/insighttoolkit5-examples/examples/Data"
T1 = os.path.join(DATA, "KmeansTest_T1UCharRaw.nii.gz")
REF = os.path.join(DATA, "KmeansTest_T1RawSkullStrip.nii.gz")


def dice(a, b):
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def hd95(a, b, spacing):
    from scipy import ndimage as ndi
    if not a.any() or not b.any():
        return float("inf")
    sa = a & ~ndi.binary_erosion(a)
    sb = b & ~ndi.binary_erosion(b)
    da = ndi.distance_transform_edt(~sb, sampling=spacing)[sa]
    db = ndi.distance_transform_edt(~sa, sampling=spacing)[sb]
    return float(np.percentile(np.concatenate([da, db]), 95))


def classical(t1, threshold, erode, close):
    from scipy import ndimage as ndi
    m = t1 > threshold
    if erode:
        m = ndi.binary_erosion(m, iterations=erode)
    lab, n = ndi.label(m)
    if n == 0:
        return m
    sizes = ndi.sum(m, lab, range(1, n + 1))
    m = lab == (int(np.argmax(sizes)) + 1)
    if erode:
        m = ndi.binary_dilation(m, iterations=erode)
    if close:
        m = ndi.binary_closing(m, iterations=close)
    m = ndi.binary_fill_holes(m)
    return m


def three_planes(path, img, centre, volumes, paint):
    """Writes sagittal, coronal and axial slices through the centre of `centre` (a mask) at
    1 mm per pixel, superior (or anterior) up, neurological convention (patient's left on
    the left). `volumes` are (array on img's grid, interpolation order) pairs; paint(grey,
    *their slices) gives each panel's RGB (uint8) from the T1 scaled to 0..1."""
    import imageio
    import nibabel as nib
    from scipy import ndimage as ndi
    canon = nib.as_closest_canonical(img)  # RAS voxel axes, whatever the file's order
    t1 = np.asarray(canon.dataobj).astype(np.float32)
    def ras(m):
        return np.asarray(nib.as_closest_canonical(nib.Nifti1Image(m.astype(np.float32), img.affine)).dataobj)
    vols = [(ras(v), order) for v, order in volumes]
    spacing = [float(v) for v in canon.header.get_zooms()[:3]]
    c = [int(round(v)) for v in ndi.center_of_mass(ras(centre) > 0.5)]
    hi = float(np.percentile(t1, 99.5))
    panels = []
    for axis in range(3):
        sl = [slice(None)] * 3
        sl[axis] = c[axis]
        zoom = [s for i, s in enumerate(spacing) if i != axis]
        grey = np.clip(ndi.zoom(t1[tuple(sl)], zoom, order=1) / hi, 0, 1)
        rgb = paint(grey, *[ndi.zoom(v[tuple(sl)], zoom, order=o) for v, o in vols])
        panels.append(rgb.transpose(1, 0, 2)[::-1])  # rows: second remaining axis, top = +S (or +A)
    h = max(pn.shape[0] for pn in panels)
    panels = [np.pad(pn, ((0, h - pn.shape[0]), (0, 4), (0, 0))) for pn in panels]
    imageio.imwrite(path, np.concatenate(panels, 1))


def figure(path, img, pred, ref):
    """The T1 with the network's outline (red) and the reference's (green); yellow where
    they agree."""
    from scipy import ndimage as ndi
    def paint(grey, p, r):
        g = (grey * 255).astype(np.uint8)
        rgb = np.stack([g, g, g], -1)
        p, r = p > 0.5, r > 0.5
        pe, re_ = p & ~ndi.binary_erosion(p), r & ~ndi.binary_erosion(r)
        rgb[pe] = (255, 40, 40)
        rgb[re_] = (40, 220, 40)
        rgb[pe & re_] = (255, 230, 40)
        return rgb
    three_planes(path, img, ref, [(pred, 0), (ref, 0)], paint)


def uncertainty_figure(path, img, unc, pred, ref):
    """The T1 in grey, the network's uncertainty over it (transparent below 0.1, then dark
    red to yellow), and in cyan the voxels where the network's mask and the reference
    disagree."""
    from scipy import ndimage as ndi
    def paint(grey, u, wrong):
        u, w = np.clip(u, 0, 1), wrong > 0.5
        heat = np.stack([np.full_like(u, 1.0), np.clip(u * 1.6 - 0.4, 0, 1), np.zeros_like(u)], -1)
        alpha = np.clip((u - 0.1) / 0.4, 0, 0.85)[..., None]
        rgb = (np.stack([grey, grey, grey], -1) * (1 - alpha) + heat * alpha) * 255
        rgb[w & ~ndi.binary_erosion(w)] = (40, 220, 230)
        return rgb.astype(np.uint8)
    three_planes(path, img, ref, [(unc, 1), (pred ^ ref, 0)], paint)


def uncertainty_metrics(unc, pred, ref, spacing):
    """Where the map is high: mean uncertainty over the voxels the mask gets wrong and over
    those it gets right near the outlines (within 10 mm of either), and how well the map
    ranks wrong voxels above right ones there (ROC AUC, Mann-Whitney)."""
    from scipy import ndimage as ndi
    from scipy.stats import rankdata
    near = (ndi.distance_transform_edt(~(pred & ~ndi.binary_erosion(pred)), sampling=spacing) <= 10) | (
        ndi.distance_transform_edt(~(ref & ~ndi.binary_erosion(ref)), sampling=spacing) <= 10)
    wrong = (pred ^ ref) & near
    right = ~(pred ^ ref) & near
    u_wrong, u_right = unc[wrong].astype(np.float64), unc[right].astype(np.float64)
    ranks = rankdata(np.concatenate([u_wrong, u_right]))
    auc = (ranks[:len(u_wrong)].sum() - len(u_wrong) * (len(u_wrong) + 1) / 2) / max(len(u_wrong) * len(u_right), 1)
    return {"mean_where_wrong": float(u_wrong.mean()), "mean_where_right_near_outline": float(u_right.mean()),
            "auc_wrong_vs_right_near_outline": float(auc), "wrong_voxels": int(wrong.sum())}


def main():
    ap = evaluation.arg_parser("mr_brain_extract", "for CI: the classical baseline with its recorded settings, no search")
    a = ap.parse_args()
    import nibabel as nib
    os.makedirs(a.out, exist_ok=True)
    for f in (T1, REF):
        if not os.path.exists(f):
            print(f"{f}: missing (install the Debian package insighttoolkit5-examples)", file=sys.stderr)
            sys.exit(77)  # "skipped" for CTest
    t0 = time.time()
    img = nib.load(T1)
    t1 = np.asarray(img.dataobj).astype(np.float32)
    spacing = [float(abs(v)) for v in img.header.get_zooms()[:3]]
    ref = np.asarray(nib.load(REF).dataobj) > 0
    out = os.path.join(a.out, "mask.nii.gz")
    unc_path = os.path.join(a.out, "uncertainty.nii.gz")
    r = subprocess.run([a.cli, "infer", "-m", a.model, T1, "-o", out, "--device", "cpu", "--threads", str(a.threads),
                        "--uncertainty", unc_path, "--report", os.path.join(a.out, "report.json")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"lumen-cli infer failed:\n{r.stderr}")
    pred_img = nib.load(out)
    if pred_img.shape != img.shape or not np.allclose(pred_img.affine, img.affine, atol=1e-3):
        raise SystemExit("the mask is not on the input grid")
    pred = np.asarray(pred_img.dataobj) > 0
    result = {"network": {"dice": dice(pred, ref), "hd95_mm": hd95(pred, ref, spacing)}}
    unc = np.asarray(nib.load(unc_path).dataobj).astype(np.float32)
    result["uncertainty"] = uncertainty_metrics(unc, pred, ref, spacing)
    labels = json.load(open(os.path.join(a.out, "report.json")))["labels"]
    result["uncertainty"]["mean_per_label"] = {k: round(v["mean_uncertainty"], 4) for k, v in labels.items()}
    best = None
    recorded = {}
    metrics_path = os.path.join(a.model, "docs", "metrics.json")
    if a.quick and os.path.exists(metrics_path):
        recorded = json.load(open(metrics_path)).get("classical", {}).get("settings", {})
    grid = ([(recorded["threshold"], recorded["erode"], recorded["close"])] if recorded else
            [(t, e, c) for t in range(30, 85, 5) for e in (1, 2, 3) for c in (0, 2, 4)])
    for thr, erode, close in grid:
        m = classical(t1, thr, erode, close)
        d = dice(m, ref)
        if best is None or d > best[0]:
            best = (d, thr, erode, close, m)
    result["classical"] = {"dice": best[0], "hd95_mm": hd95(best[4], ref, spacing),
                           "settings": {"threshold": best[1], "erode": best[2], "close": best[3]}}
    result["seconds"] = round(time.time() - t0, 1)
    result["reference_ml"] = float(ref.sum() * np.prod(spacing) / 1000)
    result["network_ml"] = float(pred.sum() * np.prod(spacing) / 1000)
    json.dump(result, open(os.path.join(a.out, "metrics.json"), "w"), indent=1)
    figure(os.path.join(a.out, "brain_extract.png"), img, pred, ref)
    uncertainty_figure(os.path.join(a.out, "uncertainty.png"), img, unc, pred, ref)
    print(json.dumps(result, indent=1))
    if a.check:
        f = evaluation.floors(a.model)
        failed = []
        if "uncertainty_auc" in f and result["uncertainty"]["auc_wrong_vs_right_near_outline"] < f["uncertainty_auc"]:
            failed.append(f"uncertainty AUC {result['uncertainty']['auc_wrong_vs_right_near_outline']:.3f} < "
                          f"{f['uncertainty_auc']}")
        if result["network"]["dice"] < f["dice"]:
            failed.append(f"Dice {result['network']['dice']:.4f} < {f['dice']}")
        if result["network"]["hd95_mm"] > f["hd95_mm"]:
            failed.append(f"HD95 {result['network']['hd95_mm']:.2f} mm > {f['hd95_mm']}")
        evaluation.finish_check(failed)


if __name__ == "__main__":
    main()
