"""Low-dose versions of the held-out head CT (InVesalius "Cranium"), for evaluating the CT
models with the C++ engine. Shared by eval_denoiser.py and eval_dose_grader.py.

Two kinds. simulate_levels (the denoiser's): a noise-free reference and the same image
scanned at noise levels from 5 to 100 HU. simulate (the grader's): the real scan and the
doses below its own, by noise insertion:

The grain of the volume's own noise gives its reconstruction kernel (ctsim.fit_window); its
noise is measured in soft tissue (ctsim.measure_noise); the photons per ray I0 that
reproduce it with that kernel are found by calibration (one I0 for the whole
volume: the tube current does not change from slice to slice); each lower dose is then
simulated by noise insertion with exact Poisson counts and electronic noise (ctsim).
Seeded, so every run sees the same noise.
"""
import os

import numpy as np
import torch

import ct_data
import ctsim

FRACTIONS = {"full": 1.0, "1/2": 0.5, "1/4": 0.25, "1/8": 0.125}
# Noise SD in soft tissue (HU) of the denoiser's evaluation. 14 HU is quarter-dose-like:
# twice the held-out scan's own noise (6.9 HU), as a quarter of its dose would give.
LEVELS = (5, 10, 14, 20, 40, 70, 100)
QUARTER_DOSE_LEVEL = 14


def slices_for(quick, nz):
    # Quick (CI): every 8th slice of the brain-bearing part; full: every slice.
    return list(range(16, nz - 8, 8)) if quick else list(range(nz))


def _cache_path(quick, seed, fractions, realisations, kind="cranium"):
    # Keyed by the arguments and the simulation code itself, so a change to either
    # simulates again instead of reusing stale noise.
    import hashlib
    h = hashlib.sha256()
    for f in ("ctsim.py", "ct_eval_data.py", "ct_data.py", "ct_bank.py"):
        h.update(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f), "rb").read())
    h.update(repr((quick, seed, tuple(fractions), realisations)).encode())
    root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lumen-training", "eval")
    return os.path.join(root, f"{kind}_{'quick' if quick else 'full'}_{h.hexdigest()[:16]}.npz")


def simulate(quick, seed=0, fractions=("1/2", "1/4", "1/8"), realisations=1, log=None):
    """-> dict(hu=[Z, Y, X] full dose, spacing, native_sd (HU, true SD), window (FBP), i0, low={(name, r): [Z, Y, X]},
    slices=indices used). Cached (the full volume takes minutes to simulate)."""
    log = log or (lambda m: print(m, flush=True))
    cache = _cache_path(quick, seed, fractions, realisations)
    if os.path.exists(cache):
        z = np.load(cache)
        low = {(name, r): z[f"low_{name}_{r}"].astype(np.float32) for name in fractions for r in range(realisations)}
        log(f"held-out CT: simulated doses from {cache}")
        return {"hu": z["hu"], "spacing": tuple(z["spacing"]), "native_sd": float(z["native_sd"]),
                "native_sd_highpass": float(z["native_sd_highpass"]), "window": float(z["window"]), "i0": float(z["i0"]),
                "low": low, "slices": list(z["slices"])}
    out = _simulate(quick, seed, fractions, realisations, log)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    arrays = {f"low_{n}_{r}": v.astype(np.int16) for (n, r), v in out["low"].items()}
    np.savez(cache + ".tmp.npz", hu=out["hu"], spacing=np.array(out["spacing"]), native_sd=out["native_sd"],
             native_sd_highpass=out["native_sd_highpass"], window=out["window"], i0=out["i0"],
             slices=np.array(out["slices"]), **arrays)
    os.replace(cache + ".tmp.npz", cache)
    return out


def _simulate(quick, seed, fractions, realisations, log):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    hu, spacing = ct_data.load_cranium()
    pixel = spacing[1]
    gen = torch.Generator().manual_seed(seed)
    # The scan's kernel, from the grain of its noise in every 12th slice of the brain
    # (the same slices for the quick and the full evaluation).
    window, err = ctsim.fit_window([hu[z] for z in range(24, hu.shape[0] - 8, 12)], pixel, gen)
    idx = slices_for(quick, hu.shape[0])
    hu = hu[idx]
    sims, natives, ratios = [], [], []
    for z in range(hu.shape[0]):
        sl = ctsim.Slice(hu[z], pixel)
        sims.append(sl)
        mask = ctsim.soft_tissue_mask(hu[z])
        if mask.sum() >= 2000:
            natives.append(ctsim.measure_noise(hu[z], mask))
            u1, _ = sl.unit_noise(gen, electronic=False)
            u = ctsim.blend(u1, window).numpy()[:hu.shape[1], :hu.shape[2]]
            ratios.append((ctsim.measure_noise(u, mask), float(u[mask].std())))
    natives, ratios = np.array(natives), np.array(ratios)
    native_sd = float(np.median(natives))
    # Same kernel, so the estimator sees the same share of both noises: the ratio is unbiased.
    i0 = float(np.median((ratios[:, 0] / natives) ** 2))
    native_true_sd = float(np.median(natives * ratios[:, 1] / ratios[:, 0]))
    log(f"held-out CT: {len(idx)} slices, noise grain fits the FBP window a = {window:.2f} (0.5 Hann .. 1 ramp; "
        f"spectral misfit {err:.3f}), native noise {native_true_sd:.2f} HU in soft tissue ({native_sd:.2f} by the "
        f"3x3 high-pass estimator), calibrated I0 {i0:.4g} photons/ray")
    low = {}
    for name in fractions:
        f = FRACTIONS[name]
        for r in range(realisations):
            g = torch.Generator().manual_seed(seed * 1000 + int(1000 * f) + 7919 * r)
            vol = np.stack([hu[z] + sims[z].noise(i0, f, g, window=window).numpy() for z in range(hu.shape[0])])
            low[(name, r)] = np.round(vol).astype(np.float32)  # CT numbers are integers
    return {"hu": hu, "spacing": (spacing[0] * (8 if quick else 1), spacing[1], spacing[2]), "native_sd": native_true_sd,
            "native_sd_highpass": native_sd, "window": window, "i0": i0, "low": low, "slices": idx}


def simulate_levels(quick, seed=0, levels=LEVELS, log=None):
    """The held-out CT made noise-free (ct_bank.clean_slice: the same preparation as the
    training bases), and that image scanned at each noise level: the reconstruction of its
    projections' Poisson and electronic noise, at the photons per ray that give the level's
    SD in soft tissue, with the scan's own kernel. The reference and the noisy images come
    from the same noiseless projections and differ only in noise, so a perfect denoiser
    scores an error of zero; no reference noise caps what can be shown.
    -> dict(reference [Z, Y, X], spacing, window, slices, levels={sd: dict(volume, i0,
    measured_sd)}). Cached."""
    log = log or (lambda m: print(m, flush=True))
    cache = _cache_path(quick, seed, levels, 1, kind="cranium_levels")
    if os.path.exists(cache):
        z = np.load(cache)
        log(f"held-out CT: noise levels from {cache}")
        return {"reference": z["reference"], "spacing": tuple(z["spacing"]), "window": float(z["window"]),
                "slices": list(z["slices"]),
                "levels": {sd: {"volume": z[f"level_{sd}"].astype(np.float32), "i0": float(z[f"i0_{sd}"]),
                                "measured_sd": float(z[f"sd_{sd}"])} for sd in levels}}
    import ct_bank
    hu, spacing = ct_data.load_cranium()
    gen = torch.Generator().manual_seed(seed)
    window, err = ctsim.fit_window([hu[z] for z in range(24, hu.shape[0] - 8, 12)], spacing[1], gen)
    idx = slices_for(quick, hu.shape[0])
    ref = np.stack([ct_bank.clean_slice(hu, z) for z in idx])
    sims = [ctsim.Slice(ref[i], spacing[1]) for i in range(len(idx))]
    masks = [ctsim.soft_tissue_mask(ref[i]) for i in range(len(idx))]
    unit = []  # soft-tissue SD of each slice's noise at one photon per ray (Gaussian approximation)
    for sl, m in zip(sims, masks):
        if m.sum() >= 2000:
            u1, _ = sl.unit_noise(gen, electronic=False)
            unit.append(float(ctsim.blend(u1, window).numpy()[:m.shape[0], :m.shape[1]][m].std()))
    out = {"reference": ref, "spacing": (spacing[0] * (8 if quick else 1), spacing[1], spacing[2]), "window": window,
           "slices": idx, "levels": {}}
    for sd in levels:
        i0 = float(np.median(np.array(unit) / sd) ** 2)
        g = torch.Generator().manual_seed(seed * 1000 + 17 * sd)
        noise = [sl.scan_noise(i0, g, window=window).numpy() for sl in sims]
        measured = float(np.median([n[m].std() for n, m in zip(noise, masks) if m.sum() >= 2000]))
        vol = np.round(ref + np.stack(noise)).astype(np.float32)  # CT numbers are integers
        out["levels"][sd] = {"volume": vol, "i0": i0, "measured_sd": measured}
        log(f"held-out CT: noise level {sd} HU: I0 {i0:.4g} photons/ray, {measured:.1f} HU measured in soft tissue")
    log(f"held-out CT: {len(idx)} noise-free slices, kernel a = {window:.2f} (spectral misfit {err:.3f})")
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    arrays = {}
    for sd, v in out["levels"].items():
        arrays.update({f"level_{sd}": v["volume"].astype(np.int16), f"i0_{sd}": v["i0"], f"sd_{sd}": v["measured_sd"]})
    np.savez(cache + ".tmp.npz", reference=ref, spacing=np.array(out["spacing"]), window=window, slices=np.array(idx),
             **arrays)
    os.replace(cache + ".tmp.npz", cache)
    return out


def head_mask(hu):
    from scipy import ndimage as ndi
    m = np.zeros(hu.shape, bool)
    for z in range(hu.shape[0]):
        m[z] = ndi.binary_fill_holes(ndi.binary_opening(hu[z] > -500, iterations=2))
    return m


def write(path, vol, spacing):
    ct_data.save_nifti(path, vol, spacing, np.int16)
    return path


def workdir(path):
    os.makedirs(path, exist_ok=True)
    return path
