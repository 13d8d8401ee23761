#!/usr/bin/python3
"""Evaluates the CT dose-level grader with Lumen's C++ engine (`lumen-cli infer`) on the
held-out head CT (InVesalius "Cranium", never used in training).

    /usr/bin/python3 models/training/eval_dose_grader.py [--quick] [--check] [--realisations 2]
        [--cli build/release/app/lumen-cli] [--model resources/models/ct_dose_grade] [--out /tmp/ct_dose_grade_eval]

Three parts, each series through `lumen-cli infer` as a NIfTI volume:

1. Doses. The scan's own noise is "full"; 1/2, 1/4 and 1/8 are simulated from it by noise
   insertion (ct_eval_data.simulate: calibrated photon count, exact Poisson and electronic
   noise, filtered back-projection), in several independent noise realisations. Reported:
   series accuracy (the class of the series' mean probabilities), slice accuracy and the
   slice confusion matrix (rows: true dose, columns: predicted) over the slices the engine
   grades, the share it grades (slice_evidence leaves out slices with less than 12 cm^2 of
   soft tissue), and the estimated noise SD against the true one (the scan's own,
   native_noise_hu, divided by the square root of the dose fraction). Also how much of the
   slices' spread within a series their size explains: ln(estimate) against each slice's
   water-equivalent diameter (AAPM Report 220), slope and correlation.
2. Noise levels (the denoiser's evaluation: ct_eval_data.simulate_levels, the scan made
   noise-free and scanned at 5-100 HU; its quick slices in either mode): the estimate against each level's true SD, and
   whether a level outside the range the model knows (lumen.json estimate.known_range) is
   refused ("outside the range the model knows", or no slice shows tissue its noise leaves
   readable) and one inside it graded. There the noise is known exactly, so each graded
   slice is also compared with its own noise (one scan's noise varies along the head, by
   0.7-1.2 of its median here): slice_accuracy_own_noise, and the slices' estimate errors.
3. Monotonicity and range: the noise-free scan plus the 14 HU level's noise scaled by
   factors from 0.15 to 4.6 (2-64 HU: the same noise pattern, more of it). The series
   estimate must rise with every step; no slice's grade nor the series' may fall from one
   graded step to the next; a step more than 15 % inside the known range must be graded, and
   one more than 15 % beyond it refused as "outside the range the model knows" (within 15 %
   of an end either is right: the estimate's error).

--check fails (exit 1) below the floors or above the ceilings in the bundle's
docs/metrics.json for this mode (quick: every 8th slice, one realisation; for CI), or when
part 2 or 3 fails. Also writes the engine's saliency map for a quarter-dose series and a
figure of it.
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
import ctsim  # noqa: E402
import fit_size_reference  # noqa: E402
import evaluation  # noqa: E402

CLASSES = ["full", "1/2", "1/4", "1/8"]
LADDER = [round(0.15 * 1.17 ** i, 4) for i in range(23)]  # noise factors 0.15 .. 4.6 of the 14 HU level
CLASS_EDGES = [7.0 * 2 ** (k / 2 + 0.25) for k in range(len(CLASSES) - 1)]  # the class bins' edges (HU)
MARGIN = 1.15  # a ladder step this near an end of the known range may go either way (the estimate reads up to 9 % low there)


def known_range(model):
    return json.load(open(os.path.join(model, "configs", "lumen.json")))["estimate"]["known_range"]


def grade_of(res):
    """-> (series class index or None when not graded, [slice class index or None])."""
    series = CLASSES.index(res["predicted"]) if res["predicted"] else None
    return series, [int(np.argmax(p)) if p else None for p in res["slice_probabilities"]]


def infer(cli, model, src, out_json, threads, saliency=None, refusals=False):
    """-> the result JSON; with refusals, None when the engine refuses the series (its
    message is printed)."""
    cmd = [cli, "infer", "-m", model, src, "-o", out_json, "--device", "cpu", "--threads", str(threads)]
    if saliency:
        cmd += ["--saliency", saliency]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 and refusals and "no slice shows enough tissue" in r.stderr:
        print("  refused:", r.stderr.strip().splitlines()[-1])
        return None
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
    raw_right = 0  # slices whose raw estimate (not referred to size) lies in their dose's bin
    dw = water_equivalent_diameters(sim["hu"], spacing)
    size_rows, referred_rows = [], []  # (series number, slice's water-equivalent diameter, ln of its estimate)
    diameter_gap = 0.0  # the engine's diameters against this script's, mm
    series_rows = []
    est_errors = []  # series estimate / true SD - 1
    for dose, r, vol in series:
        name = f"{dose.replace('/', '-')}_r{r}"
        src = ct_eval_data.write(os.path.join(out, f"{name}.nii.gz"), vol, spacing)
        sal = os.path.join(out, "saliency_1-4.nii.gz") if (dose == "1/4" and r == 0) else None
        res = infer(a.cli, a.model, src, os.path.join(out, f"{name}.json"), a.threads, sal)
        truth = CLASSES.index(dose)
        for p, e in zip(res["slice_probabilities"], res["estimate"]["slices"]):
            if not p:  # not graded: too little soft tissue in the slice
                ungraded += 1
                continue
            confusion[truth, int(np.argmax(p))] += 1
            raw_right += int(np.digitize(e, CLASS_EDGES) == truth)
        size_rows += [(len(series_rows), dw[z], np.log(e)) for z, e in enumerate(res["estimate"]["slices"]) if e]
        referred = res["estimate"].get("referred")
        if referred:
            referred_rows += [(len(series_rows), dw[z], np.log(e)) for z, e in enumerate(referred["slices"]) if e]
            diameter_gap = max(diameter_gap, float(np.max(np.abs(np.array(referred["water_equivalent_diameter_mm"]) - dw))))
        true_sd = sim["native_sd"] / np.sqrt(ct_eval_data.FRACTIONS[dose])
        est = res["estimate"]["value"]
        est_errors.append(est / true_sd - 1)
        series_rows.append({"dose": dose, "realisation": r, "predicted": res["predicted"], "true_sd_hu": round(true_sd, 2),
                            "estimated_sd_hu": round(est, 2),
                            "probabilities": {k: round(v, 4) for k, v in res["probabilities"].items()}})
        print(f"{dose:>4} #{r}: predicted {res['predicted']}, noise SD {est:.1f} HU (true {true_sd:.1f})  "
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
              "slice_accuracy_raw_estimate": round(raw_right / max(int(confusion.sum()), 1), 4),
              "slices_graded": round(float(confusion.sum() / slices), 4),
              "slice_accuracy_ungraded_as_errors": round(float(np.trace(confusion) / slices), 4),
              "per_class_slice_recall": dict(zip(CLASSES, [round(v, 4) for v in per_class])),
              "confusion_rows_true_cols_predicted": {"classes": CLASSES, "counts": confusion.tolist()},
              "estimate_median_abs_error_pct": round(100 * float(np.median(np.abs(est_errors))), 2),
              "estimate_max_abs_error_pct": round(100 * float(np.max(np.abs(est_errors))), 2),
              "slice_noise_and_size": size_dependence(size_rows),
              "slice_noise_and_size_referred": size_dependence(referred_rows),
              "water_equivalent_diameter_engine_vs_python_mm": round(diameter_gap, 4),
              "series": series_rows}
    failed = levels_and_ladder(a, out, mode, result)
    if diameter_gap > 0.5:  # the engine's AAPM 220 diameters against fit_size_reference's
        failed.append(f"the engine's water-equivalent diameters differ from this script's by up to {diameter_gap:.2f} mm")
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, open(os.path.join(out, "metrics.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in result.items() if k not in ("series", "levels", "ladder")}, indent=1))

    if a.check:
        floors = evaluation.floors(a.model, mode)
        # not (x >= floor): a NaN fails too
        failed += [f"{k} {result[k]:.4f} < {v}" for k, v in floors.items() if not result[k] >= v]
        failed += [f"{k} {result[k]:.4f} > {v}" for k, v in evaluation.ceilings(a.model, mode).items() if not result[k] <= v]
        evaluation.finish_check(failed)


def water_equivalent_diameters(hu, spacing):
    """Per slice [Z, Y, X], the water-equivalent diameter (AAPM Report 220) in mm."""
    return np.array([fit_size_reference.water_equivalent_diameter(s, spacing[1], spacing[2]) for s in hu])


def size_dependence(rows):
    """How much of a slice's noise, within its series, its size explains: the slope of ln(estimate)
    against the water-equivalent diameter (both about their series' means) and the correlation.
    A diagnostic of why slices of one dose grade apart (reported, not checked)."""
    if len(rows) < 3:
        return None
    t, d, ln = (np.array(x, float) for x in zip(*rows))
    dc, lc = d.copy(), ln.copy()
    for c in set(t.tolist()):
        m = t == c
        dc[m] -= d[m].mean()
        lc[m] -= ln[m].mean()
    slope = float(np.polyfit(dc, lc, 1)[0])
    return {"slope_ln_sd_per_mm": round(slope, 5), "r": round(float(np.corrcoef(dc, lc)[0, 1]), 3),
            "water_equivalent_diameter_mm": [round(float(d.min()), 1), round(float(d.max()), 1)],
            "sd_ratio_across_that_range": round(float(np.exp(slope * (d.max() - d.min()))), 3)}


def plot(path, result, lo, hi):
    """Estimated against true noise SD, log-log: the doses, the levels and the ladder, with
    the range the model knows and the class bins."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=100)
    ax.axvspan(lo, hi, color="0.93", label=f"range the model knows ({lo:g}-{hi:g} HU)")
    edges = CLASS_EDGES
    for e in edges:
        ax.axhline(e, color="0.75", lw=0.8, ls=":")
    for c, y in zip(CLASSES, [7.0 * 2 ** (k / 2) for k in range(len(CLASSES))]):
        ax.text(2.1, y, c, va="center", fontsize=8, color="0.4")
    d = result["series"]
    ax.plot([r["true_sd_hu"] for r in d], [r["estimated_sd_hu"] for r in d], "o", color="C0", label="doses of the held-out scan")
    lv = [r for r in result["levels"] if "estimated_sd_hu" in r]
    ax.plot([r["true_sd_hu"] for r in lv], [r["estimated_sd_hu"] for r in lv], "s", color="C1", mfc="none",
            label="noise levels (noise-free scan + noise)")
    for r in result["levels"]:
        if not r["graded"]:
            y = r.get("estimated_sd_hu", hi * 1.6)  # refused before any estimate: drawn above the range
            ax.plot([r["true_sd_hu"]], [y], "x", color="C3")
            ax.annotate("not graded", (r["true_sd_hu"], y), textcoords="offset points", xytext=(4, -12), fontsize=8,
                        color="C3", ha="right")
    ld = [r for r in result["ladder"] if "estimated_sd_hu" in r]
    ax.plot([r["true_sd_hu"] for r in ld], [r["estimated_sd_hu"] for r in ld], ".-", color="C2", lw=0.8,
            label="one noise pattern, scaled")
    ax.plot([2, 120], [2, 120], color="k", lw=0.6)
    ax.set(xscale="log", yscale="log", xlim=(2, 120), ylim=(2, 120), xlabel="true noise SD in soft tissue (HU)",
           ylabel="estimated noise SD (HU)", title="ct_dose_grade on the held-out CT (quick set)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def levels_and_ladder(a, out, mode, result):
    """Parts 2 and 3 (module docstring); fills `result`, returns what failed."""
    lo, hi = known_range(a.model)
    # Always the quick slices (every 8th): the full set takes about 45 minutes to simulate.
    lv = ct_eval_data.simulate_levels(True)
    spacing = lv["spacing"]
    ref = lv["reference"]
    masks = [ctsim.soft_tissue_mask(ref[z]) for z in range(ref.shape[0])]
    edges = CLASS_EDGES
    failed, levels = [], []
    own_right, own_total, slice_errors, own_ratios = 0, 0, [], []
    for sd, level in lv["levels"].items():
        true_sd = level["measured_sd"]
        src = ct_eval_data.write(os.path.join(out, f"level_{sd}.nii.gz"), level["volume"], spacing)
        res = infer(a.cli, a.model, src, os.path.join(out, f"level_{sd}.json"), a.threads, refusals=True)
        inside = lo <= true_sd <= hi
        row = {"level_hu": sd, "true_sd_hu": round(true_sd, 2), "inside_known_range": inside}
        if res is None:
            row.update(graded=False, refused="no slice shows tissue its noise leaves readable")
        else:
            row.update(graded=bool(res["predicted"]), predicted=res["predicted"], estimated_sd_hu=round(res["estimate"]["value"], 2),
                       estimate_error_pct=round(100 * (res["estimate"]["value"] / true_sd - 1), 1))
            if row["graded"]:
                # Each slice against its own noise (the reference is noise-free: the noise is
                # known exactly), in its soft tissue: one scan's noise varies along the head.
                noise = level["volume"] - ref
                for z, est in enumerate(res["estimate"]["slices"]):
                    if est is None or masks[z].sum() < 200:
                        continue
                    own = float(noise[z][masks[z]].std())
                    own_ratios.append(own / true_sd)
                    slice_errors.append(est / own - 1)
                    own_right += int(np.digitize(est, edges) == np.digitize(own, edges))
                    own_total += 1
        levels.append(row)
        print(f"level {sd:>3} HU (true {true_sd:.1f}): " + (f"noise SD {row['estimated_sd_hu']:.1f} HU, predicted {row['predicted']}"
                                                            if res else "refused"), flush=True)
        if row["graded"] != inside:
            failed.append(f"level {sd} HU (true SD {true_sd:.1f}): {'graded' if row['graded'] else 'not graded'}, "
                          f"but the model knows {lo}-{hi} HU")
    graded = [r for r in levels if r["graded"]]
    for prev, nxt in zip(graded, graded[1:]):
        if CLASSES.index(nxt["predicted"]) < CLASSES.index(prev["predicted"]):
            failed.append(f"level {nxt['level_hu']} HU graded better than level {prev['level_hu']} HU")
    result["levels"] = levels
    result["slice_accuracy_own_noise"] = round(own_right / max(own_total, 1), 4)
    result["slices_own_noise"] = own_total
    result["own_noise_ratio_range"] = [round(min(own_ratios), 2), round(max(own_ratios), 2)]  # a slice's noise / its level's
    result["slice_estimate_median_abs_error_pct"] = round(100 * float(np.median(np.abs(slice_errors))), 2)
    result["slice_estimate_p90_abs_error_pct"] = round(100 * float(np.percentile(np.abs(slice_errors), 90)), 2)

    # Part 3: one noise pattern, more of it.
    noise = lv["levels"][14]["volume"] - ref
    ladder, prev = [], None  # prev: the last graded step
    for k in LADDER:
        true_sd = k * lv["levels"][14]["measured_sd"]
        vol = np.round(ref + k * noise).astype(np.float32)
        src = ct_eval_data.write(os.path.join(out, f"ladder_{k}.nii.gz"), vol, spacing)
        res = infer(a.cli, a.model, src, os.path.join(out, f"ladder_{k}.json"), a.threads, refusals=True)
        step = {"factor": k, "true_sd_hu": round(true_sd, 2)}
        if res is None:
            step["refused"] = "no slice shows tissue its noise leaves readable"
        else:
            series, slices = grade_of(res)
            step.update(estimated_sd_hu=round(res["estimate"]["value"], 3), predicted=res["predicted"],
                        not_graded=res.get("not_graded"), slice_grades=[CLASSES[c] if c is not None else None for c in slices])
        ladder.append(step)
        print(f"ladder x{k} (true {true_sd:.1f} HU): " + (f"noise SD {step['estimated_sd_hu']:.2f} HU, predicted {step['predicted']}"
                                                          if res else "refused"), flush=True)
        if lo * MARGIN <= true_sd <= hi / MARGIN and step.get("predicted") is None:
            failed.append(f"ladder x{k}: true SD {true_sd:.1f} HU, well inside {lo}-{hi}, not graded")
        if (true_sd < lo / MARGIN or true_sd > hi * MARGIN) and (
                step.get("predicted") is not None or "outside the range the model knows" not in (step.get("not_graded") or "")):
            failed.append(f"ladder x{k}: true SD {true_sd:.1f} HU, beyond {lo}-{hi}, not refused as outside the range")
        if res is None:
            continue
        if prev is not None and not res["estimate"]["value"] > prev[2]:
            failed.append(f"ladder x{k}: estimate {res['estimate']['value']:.3f} HU not above the step before ({prev[2]:.3f})")
        if series is not None:
            if prev is not None and prev[0] is not None:
                if series < prev[0]:
                    failed.append(f"ladder x{k}: series graded better than the last graded step")
                for z, (c, pc) in enumerate(zip(slices, prev[1])):
                    if c is not None and pc is not None and c < pc:
                        failed.append(f"ladder x{k}: slice {z} graded better than in the last graded step")
            prev = (series, slices, res["estimate"]["value"])
        else:
            prev = (prev[0], prev[1], res["estimate"]["value"]) if prev else (None, slices, res["estimate"]["value"])
    result["ladder"] = ladder
    plot(os.path.join(out, "noise_estimate.png"), result, lo, hi)
    result["monotone"] = not any("better" in f or "not above" in f for f in failed)
    result["range_right"] = not any("not graded" in f or "not refused" in f or "but the model knows" in f for f in failed)
    return failed


if __name__ == "__main__":
    main()
