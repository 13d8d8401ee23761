#!/usr/bin/python3
"""Evaluates the CT denoiser with Lumen's C++ engine (`lumen-cli infer`) on the held-out
head CT, side by side with classical filters tuned on the same data.

    /usr/bin/python3 models/training/eval_denoiser.py [--quick] [--tune [FILTER,...]] [--check]
        [--cli build/release/app/lumen-cli] [--classical build/release/bench/lumen-classical-denoise]
        [--model resources/models/ct_denoise] [--out /tmp/ct_denoise_eval]

The reference is noise-free: the held-out Cranium CT with its own noise taken out, and the
noisy inputs are that image scanned at noise levels from 5 to 100 HU SD in soft tissue
(ct_eval_data.simulate_levels): reference and input differ only in noise. For each level
it reports PSNR and SSIM against the reference for the noisy input, the network and each
classical filter: Gaussian, curvature anisotropic diffusion and bilateral (ITK), total
variation and non-local means (skimage). No BM3D-class filter installs from Debian's
packages. Classical filters are tuned per level on the evaluation data itself, given the
true noise SD (the network is not): a grid per filter and level, the best PSNR kept, the
most favourable setting they can have. --tune runs that grid on the slices of the mode run
(the card's settings were tuned with --quick; slow); otherwise
the settings recorded in the bundle's docs/metrics.json are used. --check fails (exit 1)
when a metric is below the floor recorded there for this mode (quick: every 8th slice, for
CI; full: every slice), and always when the network makes its input worse at any level
inside the noise range the card states (stated_range_hu; every level when it states none).
Writes metrics.json, a plot of the PSNR gain over the input versus noise level and figures
at the quarter-dose-like level and at the level where the network gains least to --out.

Metrics: PSNR = 10 log10(2000^2 / MSE) over the head (2000 HU: air to dense bone), SSIM
(skimage, Gaussian weights) on the soft-tissue window [-100, 200] HU, averaged over the head;
and PSNR in flat soft tissue only.
"""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import ct_data  # noqa: E402
import ct_eval_data  # noqa: E402
import evaluation  # noqa: E402

# Settings relative to the noise SD s where a filter has one, so one grid serves every level;
# each grid is wide enough that the best setting lies inside it (--tune reports any on an
# edge; Gaussian smoothing's best is its least at low noise: any blur of bone edges costs more).
GRIDS = {
    "gaussian": [[mm] for mm in (0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)],  # sigma in mm
    "anisotropic": [[it, c] for it in (1, 2, 3, 5, 8, 12, 20, 30) for c in (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)],
    "bilateral": [[d, k] for d in (0.75, 1.0, 1.5, 2.0, 3.0, 4.0) for k in (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)],  # mm, k s
    "tv": [[k] for k in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)],  # Chambolle weight k s / 1000 on HU / 1000
    "nlmeans": [[p, k] for p in (3, 5, 7, 9) for k in (0.45, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2)],  # patch, h = k s
}


def psnr(x, ref, mask):
    mse = float(np.mean((x[mask] - ref[mask]) ** 2))
    return 10 * math.log10(2000.0 ** 2 / mse)


def ssim(x, ref, mask):
    from skimage.metrics import structural_similarity
    lo, hi = -100.0, 200.0
    vals = []
    for z in range(x.shape[0]):
        if mask[z].sum() < 500:
            continue
        _, smap = structural_similarity(np.clip(ref[z], lo, hi), np.clip(x[z], lo, hi), data_range=hi - lo,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
        vals.append(float(smap[mask[z]].mean()))
    return float(np.mean(vals))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r


def classical(tool, name, params, sd, src, dst):
    """The filter `name` at grid point `params` for noise SD `sd` on the volume in file src."""
    if name in ("nlmeans", "tv"):
        from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
        vol = ct_data.load_nifti_zyx(src)
        out = np.empty_like(vol)
        for z in range(vol.shape[0]):
            if name == "tv":
                out[z] = denoise_tv_chambolle(vol[z] / 1000.0, weight=params[0] * sd / 1000.0) * 1000.0
            else:
                out[z] = denoise_nl_means(vol[z], patch_size=params[0], patch_distance=6, h=params[1] * sd, sigma=sd,
                                          fast_mode=True)
        return out
    args = list(params)
    if name == "bilateral":
        args = [params[0], params[1] * sd]
    run([tool, name, src, dst] + [str(p) for p in args])
    return ct_data.load_nifti_zyx(dst)


def tune(tool, names, vol_path, sd, ref, mask, tmp):
    """-> ({filter: best params}, [filters whose best setting is on the grid's edge])."""
    best, edges = {}, []
    for name in names:
        grid = GRIDS[name]
        scores = [(psnr(classical(tool, name, p, sd, vol_path, tmp), ref, mask), p) for p in grid]
        top = max(scores)[1]
        best[name] = top
        for i, v in enumerate(top):
            values = sorted({p[i] for p in grid})
            if len(values) > 1 and v in (values[0], values[-1]):
                edges.append(f"{name} {top} at {sd} HU")
        print(f"  tuned {name} at {sd} HU: {top}, PSNR {max(scores)[0]:.2f}", flush=True)
    return best, edges


def window(x, lo=-20.0, hi=100.0):
    return (np.clip((x - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def figure(path, images, z, error_of=None, ref=None):
    """One row: the images' slice z in the [-20, 100] HU window; then, if asked, the errors
    (image - reference) of error_of in +-40 HU."""
    import imageio
    row = [window(im[z]) for im in images]
    row += [window(im[z] - ref[z], -40, 40) for im in (error_of or [])]
    imageio.imwrite(path, np.concatenate(row, 1))


def plot(path, result):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    levels = sorted(result["levels"], key=float)
    x = [float(s) for s in levels]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    names = ["network"] + list(GRIDS)
    for name in names:
        y = [result["levels"][s][name]["psnr"] - result["levels"][s]["input"]["psnr"] for s in levels]
        ax.plot(x, y, "o-" if name == "network" else ".--", lw=2.5 if name == "network" else 1, label=name)
    ax.set_xscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(levels)
    ax.set_xlabel("noise SD in soft tissue (HU)")
    ax.set_ylabel("PSNR gain over the noisy input (dB)")
    ax.set_title(f"ct_denoise, held-out Cranium CT ({result['slices']} slices)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def rounded(row):
    return {k: ({kk: round(vv, 4) for kk, vv in v.items()} if isinstance(v, dict) else
                (round(v, 4) if isinstance(v, float) else v)) for k, v in row.items()}


def main():
    ap = evaluation.arg_parser("ct_denoise")
    ap.add_argument("--classical", default=os.path.join(ROOT, "build", "release", "bench", "lumen-classical-denoise"))
    ap.add_argument("--tune", nargs="?", const=",".join(GRIDS), default="",
                    help="tune these classical filters (comma-separated; all when none is named) and keep the "
                         "recorded settings of the others")
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    out = ct_eval_data.workdir(a.out)
    metrics_path = os.path.join(a.model, "docs", "metrics.json")
    recorded = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}

    t0 = time.time()
    sim = ct_eval_data.simulate_levels(a.quick)
    ref, spacing = sim["reference"], sim["spacing"]
    mask = ct_eval_data.head_mask(ref)
    from scipy import ndimage as ndi
    # Secondary: PSNR in flat soft tissue only (brain, muscle: -100..150 HU away from
    # edges), where readers judge noise; the primary PSNR over the whole head is dominated
    # by bone edges.
    edges = np.stack([np.hypot(ndi.sobel(ref[z], 0), ndi.sobel(ref[z], 1)) for z in range(ref.shape[0])])
    soft = mask & (ref > -100) & (ref < 150) & (edges < 400)
    # The pixel size matters to the advice: noise of the same SD has another grain at another
    # pixel size, and the noise estimate reads it differently.
    result = {"mode": mode, "slices": len(sim["slices"]), "pixel_mm": round(float(spacing[1]), 4),
              "fbp_window": sim["window"], "levels": {}}
    settings = recorded.get("classical_settings", {})
    to_tune = [n for n in a.tune.split(",") if n]
    unknown = [n for n in to_tune if n not in GRIDS]
    if unknown:
        raise SystemExit(f"--tune: unknown filter(s) {', '.join(unknown)} (known: {', '.join(GRIDS)})")
    on_edge = []

    def scores(y):
        return {"psnr": psnr(y, ref, mask), "ssim": ssim(y, ref, mask), "psnr_soft_tissue": psnr(y, ref, soft)}

    outputs = {}
    for sd in ct_eval_data.LEVELS:
        level = sim["levels"][sd]
        low = level["volume"]
        src = ct_eval_data.write(os.path.join(out, f"noisy_{sd}.nii.gz"), low, spacing)
        den_path = os.path.join(out, f"denoised_{sd}.nii.gz")
        run([a.cli, "infer", "-m", a.model, src, "-o", den_path, "--device", "cpu", "--threads", str(a.threads)])
        den = ct_data.load_nifti_zyx(den_path)
        have = settings.setdefault(str(sd), {})
        missing = [n for n in GRIDS if n not in have and n not in to_tune]
        if missing:
            raise SystemExit(f"{metrics_path}: no setting of {', '.join(missing)} for {sd} HU (run with --tune)")
        if to_tune:
            best, e = tune(a.classical, to_tune, src, level["measured_sd"], ref, mask, os.path.join(out, "tune.nii.gz"))
            have.update(best)
            on_edge += e
        # How Lumen's own noise estimate (the AI panel's) reads this level: the GUI places a
        # series among the levels by it.
        estimated = float(run([a.classical, "noise", src]).stdout)
        row = {"measured_sd_hu": level["measured_sd"], "estimated_sd_hu": estimated, "i0": level["i0"],
               "input": scores(low), "network": scores(den)}
        best_y = None
        for name in GRIDS:
            params = settings[str(sd)][name]
            y = classical(a.classical, name, params, level["measured_sd"], src, os.path.join(out, f"{name}.nii.gz"))
            row[name] = scores(y)
            if best_y is None or row[name]["psnr"] > best_y[1]:
                best_y = (name, row[name]["psnr"], y)
        row["best_classical"] = best_y[0]
        row["gain_over_best_classical_db"] = row["network"]["psnr"] - best_y[1]
        row["gain_over_input_db"] = row["network"]["psnr"] - row["input"]["psnr"]
        # The removed noise should carry no anatomy: its correlation with the reference's
        # edge strength.
        row["removed_noise_edge_correlation"] = float(np.corrcoef(edges[mask], np.abs(low - den)[mask])[0, 1])
        result["levels"][str(sd)] = rounded(row)
        outputs[sd] = (low, den, best_y)
        print(f"{sd} HU ({level['measured_sd']:.1f} measured): " + ", ".join(
            f"{k} {v['psnr']:.2f} dB / {v['ssim']:.4f}" for k, v in row.items() if isinstance(v, dict))
            + f"; gain over {best_y[0]} {row['gain_over_best_classical_db']:+.2f} dB", flush=True)
    result["classical_settings"] = settings
    if on_edge:
        result["settings_on_grid_edge"] = on_edge
        print("best settings on a grid edge (widen the grid): " + "; ".join(on_edge))
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, open(os.path.join(out, "metrics.json"), "w"), indent=1)

    z = ref.shape[0] // 2
    q = ct_eval_data.QUARTER_DOSE_LEVEL
    low, den, (bname, _, by) = outputs[q]
    figure(os.path.join(out, "quarter_dose.png"), [low, den, by, ref], z, [den, by], ref)
    worst = min(ct_eval_data.LEVELS, key=lambda s: result["levels"][str(s)]["gain_over_best_classical_db"])
    low, den, (bname, _, by) = outputs[worst]
    figure(os.path.join(out, "weakest_level.png"), [low, den, by, ref], z, [den, by], ref)
    plot(os.path.join(out, "gain_vs_noise.png"), result)

    if a.check:
        failed = []
        # The card states the noise range the model is for; inside it, the output must never
        # be worse than the input.
        lo, hi = recorded.get("stated_range_hu", [min(ct_eval_data.LEVELS), max(ct_eval_data.LEVELS)])
        for sd, row in result["levels"].items():
            if lo <= float(sd) <= hi and row["gain_over_input_db"] < 0:
                failed.append(f"{sd} HU: the network makes its input worse ({row['gain_over_input_db']:+.2f} dB), "
                              f"inside the range its card states ({lo}-{hi} HU)")
        for sd, f in evaluation.floors(a.model, mode).items():
            d = result["levels"][sd]
            if d["network"]["psnr"] < f["psnr"]:
                failed.append(f"{sd} HU: PSNR {d['network']['psnr']:.2f} < {f['psnr']}")
            if d["network"]["ssim"] < f["ssim"]:
                failed.append(f"{sd} HU: SSIM {d['network']['ssim']:.4f} < {f['ssim']}")
            if "gain_db" in f and d["gain_over_best_classical_db"] < f["gain_db"]:
                failed.append(f"{sd} HU: gain over the best classical filter {d['gain_over_best_classical_db']:.2f} dB "
                              f"< {f['gain_db']}")
        evaluation.finish_check(failed)


if __name__ == "__main__":
    main()
