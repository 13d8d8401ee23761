"""Physically based low-dose CT simulation (parallel-beam), shared by the CT models.

A CT slice in HU becomes linear attenuation (water 0.0192 / mm at ~70 keV); its line
integrals p are computed by projecting it (Radon transform). A scan at I0 incident photons
per ray measures Poisson(I0 exp(-p)) counts plus Gaussian electronic noise; the log-
transformed, filtered back-projected (FBP) result is the reconstructed image.

Dose is simulated by *noise insertion*, the standard way to lower the dose of a real scan:
the real image already carries the noise of its own dose I0. A scan at a fraction a of that
dose has, per ray, the variance 1/(a I0 e^-p) + se^2/(a I0 e^-p)^2; the real image has
1/(I0 e^-p) + se^2/(I0 e^-p)^2. The difference is what we add: a reconstruction of
independent noise with that variance (Poisson counts at a I0 / (1 - a) plus electronic
noise of variance se^2 (1 + a) / (1 - a), log-transformed, reconstructed) (Yu et al. 2012,
Zeng et al. 2015). The inserted noise is reconstructed with the scan's own kernel, found
from the grain of its noise (fit_window); I0 is then found by calibration: the simulated
noise at the image's own dose, measured like the image's own, must match it. (With any
other kernel the calibration is biased: a noise estimator sees a different share of
smooth-grained and fine-grained noise.)

Everything runs in torch on the CPU; radon and FBP are exact adjoint-free implementations
by rotation / linear interpolation (not fast, but a 256 x 256 slice takes ~0.2 s).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

MU_WATER = 0.0192  # 1/mm, about 70 keV effective
# Electronic (detector) noise SD in photon-count units: variance 10 quanta^2, the order
# used in noise-insertion work. At head-CT photon counts it matters only in rays that are
# nearly starved (it is fixed, whereas the Poisson variance grows with the counts).
ELECTRONIC_SD = math.sqrt(10.0)


def hu_to_mu(hu):
    return torch.clamp(MU_WATER * (1.0 + hu / 1000.0), min=0.0)


def _detector(n):
    return int(math.ceil(n * math.sqrt(2.0))) | 1  # odd, covers the image diagonal


def radon(img, n_angles=360, chunk=45):
    """img [N, N] (any units, pixel units of length) -> sinogram [A, D] of line integrals
    in pixel lengths (multiply by the pixel size for mm)."""
    n = img.shape[-1]
    assert img.shape[-2] == n
    d = _detector(n)
    thetas = torch.arange(n_angles, dtype=torch.float64) * math.pi / n_angles
    # Rotated frame coordinates in normalised units of the input ([-1, 1] spans n pixels).
    u = (torch.arange(d, dtype=torch.float64) - (d - 1) / 2) * (2.0 / n)
    vv, uu = torch.meshgrid(u, u, indexing="ij")  # rows: along the ray (v), cols: detector (u)
    out = torch.empty(n_angles, d, dtype=img.dtype)
    src = img[None, None]
    for a0 in range(0, n_angles, chunk):
        th = thetas[a0:a0 + chunk]
        c, s = torch.cos(th)[:, None, None], torch.sin(th)[:, None, None]
        x = uu[None] * c - vv[None] * s
        y = uu[None] * s + vv[None] * c
        grid = torch.stack([x, y], -1).to(img.dtype)
        sampled = F.grid_sample(src.expand(len(th), 1, n, n), grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)
        out[a0:a0 + len(th)] = sampled[:, 0].sum(1)
    return out


def ramp_filter(d, window="hann"):
    """Frequency response of the FBP filter for detector length d (zero-padded to a power of
    two): the band-limited ramp (Ram-Lak in the spatial domain) times a window. window: a
    name, or a number a for the generalised Hamming window a + (1 - a) cos(2 pi f) (0.5 is
    Hann, the smoothest; 1 is the bare ramp, the sharpest). Reconstruction kernels differ
    mainly in this: the grain of a scan's noise is set by it."""
    size = 1 << int(math.ceil(math.log2(2 * d)))
    # Spatial Ram-Lak kernel, then FFT: avoids the DC error of a sampled |f|.
    h = torch.zeros(size, dtype=torch.float64)
    n = torch.cat([torch.arange(0, size // 2 + 1), torch.arange(-size // 2 + 1, 0)]).to(torch.float64)
    h[n == 0] = 0.25
    odd = (n.abs() % 2) == 1
    h[odd] = -1.0 / (math.pi * n[odd]) ** 2
    resp = torch.fft.fft(h).real
    f = torch.fft.fftfreq(size, dtype=torch.float64)
    if window == "hann":
        window = 0.5
    if isinstance(window, (int, float)):
        resp = resp * (window + (1.0 - window) * torch.cos(2 * math.pi * f))
    elif window == "shepp-logan":
        sinc = torch.where(f == 0, torch.ones_like(f), torch.sin(math.pi * f) / (math.pi * f))
        resp = resp * sinc
    elif window == "cosine":
        resp = resp * torch.cos(math.pi * f)
    elif window == "cos2pi":  # the part of the generalised Hamming window that a scales down
        resp = resp * torch.cos(2 * math.pi * f)
    elif window != "ramp":
        raise ValueError(window)
    return resp, size


def fbp(sino, n, window="hann", chunk=45):
    """Filtered back-projection of sino [A, D] (line integrals in pixel lengths) onto an
    n x n grid; returns the image in the units that were projected."""
    a, d = sino.shape
    resp, size = ramp_filter(d, window)
    padded = F.pad(sino.to(torch.float64), (0, size - d))
    filt = torch.fft.ifft(torch.fft.fft(padded, dim=1) * resp, dim=1).real[:, :d]
    thetas = torch.arange(a, dtype=torch.float64) * math.pi / a
    coords = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    out = torch.zeros(n, n, dtype=torch.float64)
    for a0 in range(0, a, chunk):
        th = thetas[a0:a0 + chunk]
        t = xx[None] * torch.cos(th)[:, None, None] + yy[None] * torch.sin(th)[:, None, None]  # pixels
        gx = t / ((d - 1) / 2)  # align_corners=True over the detector
        grid = torch.stack([gx, torch.zeros_like(gx)], -1).reshape(len(th), 1, n * n, 2)
        s = F.grid_sample(filt[a0:a0 + len(th), None, None, :], grid, mode="bilinear", padding_mode="zeros",
                          align_corners=True)
        out += s.reshape(len(th), n, n).sum(0)
    return (out * math.pi / a).to(sino.dtype)


# FBP is linear in the window, so noise reconstructed with these two windows blends into
# the generalised Hamming window a: a * ramp part + (1 - a) * cos(2 pi f) part.
KERNEL_PARTS = ("ramp", "cos2pi")
SHARPEST, SMOOTHEST = 1.0, 0.5


def blend(parts, a):
    """parts [..., 2, H, W] reconstructed with KERNEL_PARTS -> the same noise with window a."""
    return a * parts[..., 0, :, :] + (1.0 - a) * parts[..., 1, :, :]


def insertion(i0, fraction, electronic=ELECTRONIC_SD):
    """Noise insertion from dose i0 to fraction * i0: the photons per ray and the electronic
    noise SD of the independent noise to add (see the module's note)."""
    return i0 * fraction / (1.0 - fraction), electronic * math.sqrt((1.0 + fraction) / (1.0 - fraction))


class Slice:
    """One slice prepared for noise simulation: its line integrals and geometry."""

    def __init__(self, hu, pixel_mm, n_angles=360):
        hu = torch.as_tensor(hu, dtype=torch.float32)
        self.hu_shape = tuple(hu.shape)
        n = max(hu.shape)
        if hu.shape[0] != hu.shape[1]:  # square, padded with air
            pad = torch.full((n, n), -1000.0)
            pad[:hu.shape[0], :hu.shape[1]] = hu
            hu = pad
        self.shape = tuple(hu.shape)
        self.n = n
        self.pixel_mm = pixel_mm
        self.n_angles = n_angles
        self.p = radon(hu_to_mu(hu), n_angles) * pixel_mm  # line integrals (dimensionless)

    def noise(self, i0, fraction, gen, electronic=None, window="hann", exact=True):
        """HU noise to add to an image of dose i0 (photons per ray) so that it looks like
        `fraction` of that dose. exact: Poisson counts; else the Gaussian approximation."""
        if fraction >= 1.0:
            return torch.zeros(self.hu_shape)
        i0_add, se = insertion(i0, fraction, ELECTRONIC_SD if electronic is None else electronic)
        return self.scan_noise(i0_add, gen, se, window, exact)

    def scan_noise(self, i0, gen, electronic=ELECTRONIC_SD, window="hann", exact=True):
        """HU noise of a scan of this slice at i0 photons per ray: its projection noise
        (Poisson counts plus electronic noise of SD `electronic`), reconstructed. Added to a
        noise-free image, it gives that image scanned at i0 (FBP is linear)."""
        lam2 = i0 * torch.exp(-self.p.to(torch.float64))
        se2 = electronic ** 2
        if exact:
            counts = torch.poisson(lam2, generator=gen) + torch.randn(lam2.shape, generator=gen,
                                                                      dtype=torch.float64) * math.sqrt(se2)
            counts = torch.clamp(counts, min=1.0)  # photon starvation: at least one count
            n = -torch.log(counts / lam2)
        else:
            var = 1.0 / lam2 + se2 / lam2 ** 2
            n = torch.randn(lam2.shape, generator=gen, dtype=torch.float64) * torch.sqrt(var)
        mu = fbp(n, self.n, window) / self.pixel_mm  # 1/mm
        return (mu * 1000.0 / MU_WATER).to(torch.float32)[:self.hu_shape[0], :self.hu_shape[1]]

    def unit_noise(self, gen, windows=KERNEL_PARTS, electronic=True):
        """Two independent zero-mean noise images per window, [len(windows), N, N] each,
        whose combination a/sqrt(I0) * u1 + se/I0 * u2 is the reconstructed noise of a scan
        at I0 with electronic noise se (the Gaussian approximation; cheap to rescale for any
        dose). All windows reconstruct the same projection noise, so the default pair can be
        blended into any generalised Hamming kernel (blend)."""
        e = torch.exp(self.p.to(torch.float64))
        n1 = torch.randn(e.shape, generator=gen, dtype=torch.float64) * torch.sqrt(e)
        n2 = torch.randn(e.shape, generator=gen, dtype=torch.float64) * e
        k = 1000.0 / MU_WATER / self.pixel_mm
        u1 = torch.stack([fbp(n1, self.n, w) * k for w in windows]).float()
        # electronic=False: u2 is None (its draw is still made, so the generator's sequence
        # does not depend on it), for callers that only need the Poisson part.
        u2 = torch.stack([fbp(n2, self.n, w) * k for w in windows]).float() if electronic else None
        return u1, u2


def soft_tissue_mask(hu, lo=-20.0, hi=100.0, size=7):
    """Pixels well inside homogeneous soft tissue, where noise can be measured."""
    from scipy import ndimage as ndi
    hu = np.asarray(hu, dtype=np.float32)
    inside = ((hu > lo) & (hu < hi)).astype(np.float32)
    return ndi.uniform_filter(inside, size) > 0.999


def measure_noise(hu, mask=None):
    """Robust noise SD (HU) of an image: the MAD of the difference to a 3x3 local mean,
    inside homogeneous soft tissue, corrected for the mean's own share of the noise
    (white-noise assumption)."""
    from scipy import ndimage as ndi
    hu = np.asarray(hu, dtype=np.float32)
    if mask is None:
        mask = soft_tissue_mask(hu)
    r = hu - ndi.uniform_filter(hu, 3)
    v = r[mask]
    if v.size < 200:
        return None
    return float(1.4826 * np.median(np.abs(v - np.median(v))) / math.sqrt(1 - 1 / 9))


def fit_window(images, pixel_mm, gen, patch=32, band=(0.1875, 0.5)):
    """The generalised Hamming window a whose noise has the grain of these real slices' own
    noise: the radial noise power spectrum of soft-tissue patches (plane removed), compared
    in shape with that of simulated noise in the same patches, over the band of spatial
    frequencies (cycles per pixel) where anatomy has little power. Noise inserted with any
    other kernel would look unlike the scan's own and be measured unlike it (measure_noise
    sees 55 % of a Hann kernel's noise, 98 % of a ramp's). -> (a, log-ratio error)."""
    f = np.fft.fftfreq(patch)
    r = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    edges = np.arange(band[0], band[1] + 1e-9, 1.0 / 16)
    rings = [(r >= lo) & (r < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    yy, xx = np.mgrid[:patch, :patch]
    design = np.c_[yy.ravel(), xx.ravel(), np.ones(patch * patch)]

    def spectrum(p):
        p = p - (design @ np.linalg.lstsq(design, p.ravel(), rcond=None)[0]).reshape(patch, patch)
        return np.fft.fft2(p)

    native, ramp, cos = [], [], []
    for hu in images:
        mask = soft_tissue_mask(hu)
        if mask.sum() < 2000:
            continue
        u1, _ = Slice(hu, pixel_mm).unit_noise(gen, electronic=False)
        u1 = u1.double().numpy()
        for y in range(0, hu.shape[0] - patch, patch // 2):
            for x in range(0, hu.shape[1] - patch, patch // 2):
                if mask[y:y + patch, x:x + patch].mean() < 0.98:
                    continue
                box = np.s_[y:y + patch, x:x + patch]
                native.append(np.abs(spectrum(np.asarray(hu[box], np.float64))) ** 2)
                ramp.append(spectrum(u1[0][box]))
                cos.append(spectrum(u1[1][box]))
    if len(native) < 20:
        raise ValueError(f"only {len(native)} soft-tissue patches to measure the noise grain from")
    nps_native = np.mean(native, 0)
    ramp, cos = np.array(ramp), np.array(cos)

    def shape(nps):
        v = np.array([nps[m].mean() for m in rings])
        return v / v.sum()

    target = shape(nps_native)
    best = None
    for a in np.arange(SMOOTHEST, SHARPEST + 1e-9, 0.01):
        sim = shape(np.mean(np.abs(a * ramp + (1 - a) * cos) ** 2, 0))
        err = float(np.sum(np.log(target / sim) ** 2))
        if best is None or err < best[1]:
            best = (round(float(a), 2), err)
    return best
