"""Training images for brain extraction by synthesis (the SynthStrip recipe, Hoopes et al.
2022): a head label map is deformed at random and every label painted with a random
intensity, then blurred, biased, noised and degraded, so the network learns the shape of
the brain and the contrast between labels, not one scanner's T1 look.

Label map (built once from mricron-data, all on the Colin27 1 mm grid, RAS):
  brain (the mask to learn): CSF inside the brain, cortical grey matter in four groups of
    AAL regions (so cortex is not one uniform intensity), white matter, deep grey matter
    (AAL caudate, putamen, pallidum, thalamus), cerebellar grey matter;
  not brain: a 2 mm shell around the brain (CSF, meninges), four classes of head tissue by
    T1 intensity (bone and air cavities, muscle, fat, skin...), background.
The brain mask is Colin27's brain-extracted image (ch2bet), holes filled.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from ct_data import kmeans_1d

COLIN_T1 = "/usr/share/mricron/templates/ch2.nii.gz"
COLIN_BRAIN = "/usr/share/mricron/templates/ch2bet.nii.gz"
AAL = "/usr/share/mricron/templates/aal.nii.gz"
BRAIN_LABELS = list(range(1, 9))
N_LABELS = 14


def build_label_map():
    """-> (labels uint8 [X, Y, Z] RAS 1 mm, affine)."""
    import nibabel as nib
    from scipy import ndimage as ndi
    img = nib.load(COLIN_T1)
    t1 = np.asarray(img.dataobj).astype(np.float32)
    brain = np.asarray(nib.load(COLIN_BRAIN).dataobj) > 0
    brain = ndi.binary_closing(brain, iterations=2)
    brain = np.stack([ndi.binary_fill_holes(brain[:, :, z]) for z in range(brain.shape[2])], 2)
    brain = ndi.binary_fill_holes(brain)
    aal = np.asarray(nib.load(AAL).dataobj).astype(np.int32)
    head = ndi.binary_fill_holes(ndi.binary_closing(t1 > 20, iterations=3))
    lab = np.zeros(t1.shape, np.uint8)
    csf, gm, wm = kmeans_1d(t1[brain].astype(np.float64), [40, 85, 115])
    b = brain
    lab[b & (t1 < 0.5 * (csf + gm))] = 1
    gm_vox = b & (t1 >= 0.5 * (csf + gm)) & (t1 < 0.5 * (gm + wm))
    group = np.where(aal > 0, aal % 4, 0)
    for g in range(4):
        lab[gm_vox & (group == g)] = 2 + g
    lab[b & (t1 >= 0.5 * (gm + wm))] = 6
    lab[b & np.isin(aal, list(range(71, 79))) & (lab >= 2)] = 7
    lab[b & (aal >= 91) & (aal <= 116) & (lab >= 2) & (lab <= 5)] = 8
    shell = ndi.binary_dilation(b, iterations=2) & ~b & head
    lab[shell] = 9
    rest = head & ~b & ~shell
    c = kmeans_1d(t1[rest].astype(np.float64), [20, 60, 110, 180])
    idx = np.argmin(np.abs(t1[rest][:, None] - c[None]), 1)
    lab[rest] = (10 + idx).astype(np.uint8)
    return lab, img.affine


def _smooth_field(shape, cps, gen, device="cpu"):
    """A smooth random field: noise on a coarse grid, upsampled (cubic-ish via trilinear)."""
    coarse = torch.randn((1, 1) + tuple(cps), generator=gen)
    return F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0, 0]


class Synth:
    """Draws (image [1, D, H, W] float 0..1, brain mask [D, H, W] uint8) on a `size`^3 grid
    of `spacing` mm, axes in RAS order like the label map."""

    def __init__(self, size=48, spacing=4.0, seed=0, shift_mm=32.0, real_t1=0.15, with_csf=True, atrophy_mm=6.0):
        import nibabel as nib
        lab, affine = build_label_map()
        self.lab = torch.from_numpy(lab.astype(np.int64))
        # Colin27's own T1 intensities, painted instead of random ones in a fraction of the
        # draws, so that a real T1 look is among the contrasts seen (still one subject's).
        t1 = np.asarray(nib.load(COLIN_T1).dataobj).astype(np.float32)
        self.t1 = torch.from_numpy(t1 / np.percentile(t1[lab > 0], 99.5))
        self.real_t1 = real_t1
        # Windows off the head's centre too: inference slides a window of this size over the
        # whole field of view, so the network must also see heads cut by the window's edge.
        self.shift_mm = shift_mm
        self.shape1 = lab.shape
        self.size = size
        self.spacing = spacing
        self.gen = torch.Generator().manual_seed(seed)
        # with_csf: the mask is the brain with the CSF around it, up to the skull (SynthStrip's
        # default definition; the 2 mm shell of label 9). Atrophy: the cortex surface is moved
        # inwards by a random 0-atrophy_mm, the gap painted as CSF, so the network learns
        # that the mask ends at the skull, not at the cortex, whatever the CSF's width.
        from scipy import ndimage as ndi
        self.with_csf = with_csf
        self.atrophy_mm = atrophy_mm
        mask_labels = BRAIN_LABELS + ([9] if with_csf else [])
        inside = np.isin(lab, mask_labels)
        self.brain = torch.from_numpy(inside.astype(np.float32))
        self.depth = torch.from_numpy(ndi.distance_transform_edt(inside).astype(np.float32)) if with_csf else None
        # Centre of the brain in voxel coordinates of the 1 mm map.
        idx = np.argwhere(np.isin(lab, BRAIN_LABELS))
        self.centre = idx.mean(0)

    def _rand(self, lo, hi):
        return lo + (hi - lo) * torch.rand((), generator=self.gen).item()

    def sample(self):
        g = self.gen
        n = self.size
        # Output grid in mm around the brain centre (+ random shift), then a random affine
        # (rotation, scaling) and a smooth deformation, mapped into the label map's voxels.
        half = (n - 1) / 2.0
        ax = (torch.arange(n, dtype=torch.float32) - half) * self.spacing
        zz, yy, xx = torch.meshgrid(ax, ax, ax, indexing="ij")
        pts = torch.stack([zz, yy, xx], -1).reshape(-1, 3)  # order: axis 0, 1, 2 of the map
        angles = [self._rand(-0.3, 0.3) for _ in range(3)]
        rot = torch.eye(3)
        for a, (i, j) in zip(angles, [(0, 1), (0, 2), (1, 2)]):
            r = torch.eye(3)
            r[i, i] = r[j, j] = math.cos(a)
            r[i, j], r[j, i] = -math.sin(a), math.sin(a)
            rot = rot @ r
        scale = torch.diag(torch.tensor([self._rand(0.85, 1.15) for _ in range(3)]))
        m = rot @ scale
        shift = torch.tensor([self._rand(-self.shift_mm, self.shift_mm) for _ in range(3)])
        src = pts @ m.T + shift
        amp = self._rand(0.0, 4.0)
        for d in range(3):
            src[:, d] += amp * _smooth_field((n, n, n), (5, 5, 5), g).reshape(-1)
        src = src + torch.tensor(self.centre, dtype=torch.float32)
        # grid_sample wants (x, y, z) = (last, middle, first axis) in [-1, 1].
        norm = torch.stack([src[:, 2] / (self.shape1[2] - 1), src[:, 1] / (self.shape1[1] - 1),
                            src[:, 0] / (self.shape1[0] - 1)], -1) * 2 - 1
        grid = norm.reshape(1, n, n, n, 3)
        # Random intensity per label, with texture inside each label.
        means = torch.rand(N_LABELS, generator=g)
        means[0] = self._rand(0.0, 0.15) if self._rand(0, 1) < 0.8 else self._rand(0.0, 1.0)  # background
        stds = torch.rand(N_LABELS, generator=g) * 0.06
        # Paint at 1 mm where the grid samples (a crop of the map around the samples).
        lo = src.floor().min(0).values.clamp(min=0).long()
        hi = (src.ceil().max(0).values + 1).long()
        hi = torch.minimum(hi, torch.tensor(self.shape1))
        sub = self.lab[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if self.with_csf and self._rand(0, 1) < 0.7:
            k = self._rand(0.0, self.atrophy_mm)
            depth = self.depth[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            sub = torch.where((sub >= 2) & (sub <= 8) & (depth < 2.0 + k), torch.ones_like(sub), sub)
        if self._rand(0, 1) < self.real_t1:
            img1 = self.t1[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].clone()
        else:
            img1 = means[sub] + stds[sub] * torch.randn(sub.shape, generator=g)
        sub_norm = torch.stack([(src[:, 2] - lo[2]) / max(int(hi[2] - lo[2]) - 1, 1),
                                (src[:, 1] - lo[1]) / max(int(hi[1] - lo[1]) - 1, 1),
                                (src[:, 0] - lo[0]) / max(int(hi[0] - lo[0]) - 1, 1)], -1) * 2 - 1
        sgrid = sub_norm.reshape(1, n, n, n, 3)
        img = F.grid_sample(img1[None, None], sgrid, mode="bilinear", padding_mode="border", align_corners=True)[0, 0]
        outside = (grid.abs() > 1).any(-1)[0]
        img[outside] = means[0]
        mask = F.grid_sample(self.brain[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0, 0] > 0.5
        # Scanner effects: blur, bias field, lower resolution along one axis, noise, gamma.
        blur = self._rand(0.0, 0.8)
        if blur > 0.25:
            img = _gauss3(img, blur)
        img = img * torch.exp(self._rand(0.0, 0.5) * _smooth_field((n, n, n), (4, 4, 4), g))
        if self._rand(0, 1) < 0.5:
            axis = int(self._rand(0, 3))
            img = _gauss1(img, self._rand(0.5, 2.0), axis)
        img = img + self._rand(0.0, 0.06) * torch.randn(img.shape, generator=g)
        img = img.clamp(min=0)
        img = img / (img.max() + 1e-6)
        img = img ** math.exp(self._rand(-0.3, 0.3))
        return img[None].float(), mask.to(torch.uint8)


def _kernel(sigma):
    r = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-x * x / (2 * sigma * sigma))
    return k / k.sum()


def _gauss1(img, sigma, axis):
    k = _kernel(sigma)
    shape = [1, 1, 1, 1, 1]
    shape[2 + axis] = len(k)
    pad = [0, 0, 0, 0, 0, 0]
    pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = len(k) // 2
    x = F.pad(img[None, None], pad, mode="replicate")
    return F.conv3d(x, k.reshape(shape))[0, 0]


def _gauss3(img, sigma):
    for a in range(3):
        img = _gauss1(img, sigma, a)
    return img
