#!/usr/bin/python3
"""Evaluates the CT dose-level grader with Lumen's C++ engine (`lumen-cli infer`) on the
held-out head CT (InVesalius "Cranium", never used in training).

    /usr/bin/python3 models/training/eval_dose_grader.py [--quick] [--check] [--realisations 2]
        [--cli build/release/app/lumen-cli] [--model resources/models/ct_dose_grade] [--out /tmp/ct_dose_grade_eval]

The scan's own noise is "full"; 1/2, 1/4 and 1/8 are simulated from it by noise insertion
(ct_eval_data.py: calibrated photon count, exact Poisson and electronic noise, filtered
back-projection), in several independent noise realisations. Each simulated series goes
through `lumen-cli infer` as a NIfTI volume. Reported: series accuracy (the class of the
series' mean probabilities), slice accuracy and the slice confusion matrix (rows: true
dose, columns: predicted) over the slices the engine grades, and the share it grades (the
bundle's slice_evidence leaves out slices with less than 12 cm^2 of soft tissue: above the
vertex, below the skull base); also the slice accuracy with every ungraded slice counted
as an error. --check fails (exit 1) below the floors in the bundle's
docs/metrics.json for this mode (quick: every 8th slice, one realisation; for CI). Also
writes the engine's saliency map for a quarter-dose series and a figure of it.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ct_data  # noqa: E402
import ct_eval_data  # noqa: E402
import evaluation  # noqa: E402

CLASSES = ["full", "1/2", "1/4", "1/8"]


def infer(cli, model, src, out_json, threads, saliency=None):
    cmd = [cli, "infer", "-m", model, src, "-o", out_json, "--device", "cpu", "--threads", str(threads)]
    if saliency:
        cmd += ["--saliency", saliency]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return json.load(open(out_json))


def figure(path, hu, sal, z):
    import imageio
    g = np.clip((hu[z] + 100) / 300, 0, 1)
    s = np.clip(sal[z] / max(float(np.percentile(sal[z], 99.5)), 1e-6), 0, 1)
    rgb = np.stack([g, g, g], -1)
    heat = np.stack([s, 0.5 * s, np.zeros_like(s)], -1)
    over = np.clip(0.6 * rgb + 0.7 * heat, 0, 1)
    imageio.imwrite(path, (np.concatenate([rgb, over], 1) * 255).astype(np.uint8))


def main():
    ap = evaluation.arg_parser("ct_dose_grade")
    ap.add_argument("--realisations", type=int, default=None, help="noise realisations per dose (quick: 1, full: 2)")
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    reals = a.realisations or (1 if a.quick else 2)
    out = ct_eval_data.workdir(a.out)
    t0 = time.time()
    sim = ct_eval_data.simulate(a.quick, seed=1, realisations=reals, fractions=tuple(CLASSES[1:]))
    spacing = sim["spacing"]
    series = [("full", 0, sim["hu"])] + [(d, r, sim["low"][(d, r)]) for d in CLASSES[1:] for r in range(reals)]

    confusion = np.zeros((4, 4), int)
    ungraded = 0
    series_rows = []
    for dose, r, vol in series:
        name = f"{dose.replace('/', '-')}_r{r}"
        src = ct_eval_data.write(os.path.join(out, f"{name}.nii.gz"), vol, spacing)
        sal = os.path.join(out, "saliency_1-4.nii.gz") if (dose == "1/4" and r == 0) else None
        res = infer(a.cli, a.model, src, os.path.join(out, f"{name}.json"), a.threads, sal)
        truth = CLASSES.index(dose)
        for p in res["slice_probabilities"]:
            if not p:  # not graded: too little soft tissue in the slice
                ungraded += 1
                continue
            confusion[truth, int(np.argmax(p))] += 1
        series_rows.append({"dose": dose, "realisation": r, "predicted": res["predicted"],
                            "probabilities": {k: round(v, 4) for k, v in res["probabilities"].items()}})
        print(f"{dose:>4} #{r}: predicted {res['predicted']:>4}  "
              + "  ".join(f"{k} {v:.2f}" for k, v in res["probabilities"].items()), flush=True)
        if sal:
            s = ct_data.load_nifti_zyx(sal)
            figure(os.path.join(out, "saliency_quarter_dose.png"), vol, s, vol.shape[0] // 2)

    series_acc = float(np.mean([row["predicted"] == row["dose"] for row in series_rows]))
    slice_acc = float(np.trace(confusion) / confusion.sum())
    slices = confusion.sum() + ungraded
    # The "full" class has one series (the scan itself), the others `reals`: a balanced
    # slice accuracy weighs each dose equally.
    per_class = [float(confusion[i, i] / max(confusion[i].sum(), 1)) for i in range(4)]
    result = {"mode": mode, "slices_per_series": len(sim["slices"]), "realisations": reals,
              "native_noise_hu": round(sim["native_sd"], 2), "fbp_window": sim["window"], "series_accuracy": round(series_acc, 4),
              "slice_accuracy": round(slice_acc, 4), "slice_balanced_accuracy": round(float(np.mean(per_class)), 4),
              "slices_graded": round(float(confusion.sum() / slices), 4),
              "slice_accuracy_ungraded_as_errors": round(float(np.trace(confusion) / slices), 4),
              "per_class_slice_recall": dict(zip(CLASSES, [round(v, 4) for v in per_class])),
              "confusion_rows_true_cols_predicted": {"classes": CLASSES, "counts": confusion.tolist()},
              "series": series_rows, "seconds": round(time.time() - t0, 1)}
    json.dump(result, open(os.path.join(out, "metrics.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=1))

    if a.check:
        floors = evaluation.floors(a.model, mode)
        evaluation.finish_check([f"{k} {result[k]:.4f} < {v}" for k, v in floors.items() if result[k] < v])


if __name__ == "__main__":
    main()
