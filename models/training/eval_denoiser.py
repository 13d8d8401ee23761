#!/usr/bin/python3
"""Evaluates the CT denoiser with Lumen's C++ engine (`lumen-cli infer`) on the held-out
head CT, side by side with ITK's classical filters run on the same data.

    /usr/bin/python3 models/training/eval_denoiser.py [--quick] [--tune] [--check]
        [--cli build/release/app/lumen-cli] [--classical build/release/bench/lumen-classical-denoise]
        [--model resources/models/ct_denoise] [--out /tmp/ct_denoise_eval]

For each simulated dose (1/2, 1/4, 1/8 of the scan's own; ct_eval_data.py) it reports PSNR
and SSIM against the full-dose image for the low-dose input, the network and each classical
filter. Classical filters are tuned on the evaluation data itself (a grid per filter, the
best PSNR at quarter dose kept): the most favourable setting they can have. --tune runs
that grid (slow); otherwise the settings recorded in the bundle's docs/metrics.json are
used. --check fails (exit 1) when a metric is below the floor recorded there for this mode
(quick: every 8th slice, for CI; full: every slice). Writes metrics.json and a figure of
the quarter-dose input, output, full dose and the removed noise (input - output) to --out.

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

GRIDS = {  # wide enough that every filter's best setting is inside its grid, not on its edge
    "gaussian": [[s] for s in (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)],
    "anisotropic": [[it, c] for it in (1, 2, 3, 5, 8, 12) for c in (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)],
    "bilateral": [[d, r] for d in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0) for r in (10, 15, 20, 30, 40, 50)],
    # Non-local means (skimage, 5 x 5 patches, 13 x 13 search), h in units of the noise SD
    # estimated on each slice. ITK's PatchBasedDenoising was tried too: over 5 minutes per
    # setting on this volume, too slow to tune fairly here.
    "nlmeans": [[h] for h in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)],
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


def nlmeans(vol, h):
    from skimage.restoration import denoise_nl_means, estimate_sigma
    out = np.empty_like(vol)
    for z in range(vol.shape[0]):
        sigma = float(estimate_sigma(vol[z]))
        out[z] = denoise_nl_means(vol[z], patch_size=5, patch_distance=6, h=h * sigma, sigma=sigma, fast_mode=True)
    return out


def classical(tool, name, params, src, dst):
    if name == "nlmeans":
        return nlmeans(ct_data.load_nifti_zyx(src), *params)
    run([tool, name, src, dst] + [str(p) for p in params])
    return ct_data.load_nifti_zyx(dst)


def figure(path, low, out, full, z):
    import imageio

    def win(x, lo=-20.0, hi=100.0):
        return (np.clip((x - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    residual = low[z] - out[z]
    row = np.concatenate([win(low[z]), win(out[z]), win(full[z]), win(residual, -40, 40)], 1)
    imageio.imwrite(path, row)


def main():
    ap = evaluation.arg_parser("ct_denoise")
    ap.add_argument("--classical", default=os.path.join(ROOT, "build", "release", "bench", "lumen-classical-denoise"))
    ap.add_argument("--tune", action="store_true")
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    out = ct_eval_data.workdir(a.out)
    metrics_path = os.path.join(a.model, "docs", "metrics.json")
    recorded = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}

    t0 = time.time()
    sim = ct_eval_data.simulate(a.quick)
    full, spacing = sim["hu"], sim["spacing"]
    mask = ct_eval_data.head_mask(full)
    result = {"mode": mode, "slices": len(sim["slices"]), "native_noise_hu": round(sim["native_sd"], 2), "fbp_window": sim["window"],
              "i0": sim["i0"], "doses": {}}
    best = recorded.get("classical_settings", {})
    if a.tune or not best:
        best = {}
        q = ct_eval_data.write(os.path.join(out, "low_1-4.nii.gz"), sim["low"][("1/4", 0)], spacing)
        for name, grid in GRIDS.items():
            scores = []
            for params in grid:
                y = classical(a.classical, name, params, q, os.path.join(out, "tune.nii.gz"))
                scores.append((psnr(y, full, mask), params))
                print(f"  tune {name} {params}: PSNR {scores[-1][0]:.2f}", flush=True)
            best[name] = max(scores)[1]
    result["classical_settings"] = best

    # Secondary: PSNR in flat soft tissue only (brain, muscle: -100..150 HU away from
    # edges), where readers judge noise; the primary PSNR over the whole head is dominated
    # by bone edges.
    from scipy import ndimage as ndi
    edges = np.stack([np.hypot(ndi.sobel(full[z], 0), ndi.sobel(full[z], 1)) for z in range(full.shape[0])])
    soft = mask & (full > -100) & (full < 150) & (edges < 400)
    for dose in ("1/2", "1/4", "1/8"):
        low = sim["low"][(dose, 0)]
        src = ct_eval_data.write(os.path.join(out, f"low_{dose.replace('/', '-')}.nii.gz"), low, spacing)
        den_path = os.path.join(out, f"denoised_{dose.replace('/', '-')}.nii.gz")
        run([a.cli, "infer", "-m", a.model, src, "-o", den_path, "--device", "cpu", "--threads", str(a.threads)])
        den = ct_data.load_nifti_zyx(den_path)
        def scores(y):
            return {"psnr": psnr(y, full, mask), "ssim": ssim(y, full, mask), "psnr_soft_tissue": psnr(y, full, soft)}
        row = {"low_dose": scores(low), "network": scores(den)}
        for name, params in best.items():
            y = classical(a.classical, name, params, src, os.path.join(out, f"{name}.nii.gz"))
            row[name] = scores(y)
        names = [n for n in row if n not in ("low_dose", "network")]
        top = max(names, key=lambda n: row[n]["psnr"]) if names else None
        row["best_classical"] = top
        row["gain_over_best_classical_db"] = row["network"]["psnr"] - row[top]["psnr"] if top else None
        # The removed noise should carry no anatomy: its correlation with the full-dose
        # image's edge strength.
        res = np.abs(low - den)
        row["removed_noise_edge_correlation"] = float(np.corrcoef(edges[mask], res[mask])[0, 1])
        result["doses"][dose] = {k: ({kk: round(vv, 4) for kk, vv in v.items()} if isinstance(v, dict) else
                                     (round(v, 4) if isinstance(v, float) else v)) for k, v in row.items()}
        if dose == "1/4":
            figure(os.path.join(out, "quarter_dose.png"), low, den, full, full.shape[0] // 2)
        print(f"dose {dose}: " + ", ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.4f}" for k, v in row.items()
                                           if isinstance(v, dict)), flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, open(os.path.join(out, "metrics.json"), "w"), indent=1)
    print(json.dumps(result["doses"]["1/4"], indent=1))

    if a.check:
        failed = []
        for dose, f in evaluation.floors(a.model, mode).items():
            d = result["doses"][dose]
            if d["network"]["psnr"] < f["psnr"]:
                failed.append(f"{dose}: PSNR {d['network']['psnr']:.2f} < {f['psnr']}")
            if d["network"]["ssim"] < f["ssim"]:
                failed.append(f"{dose}: SSIM {d['network']['ssim']:.4f} < {f['ssim']}")
            if "gain_db" in f and (d["gain_over_best_classical_db"] or -1e9) < f["gain_db"]:
                failed.append(f"{dose}: gain over the best classical filter {d['gain_over_best_classical_db']:.2f} dB < {f['gain_db']}")
        evaluation.finish_check(failed)


if __name__ == "__main__":
    main()
