"""Real CT volumes for the CT reference models, and the clean slices noise is added to.

Training: the real head CT in ../shared/data/ct-head-sinus (CamiTK test data, LGPL-3+;
163 slices 512 x 512 at 0.3125 mm, bone kernel) and CT-like slices of the Colin27 head
(mricron-data) where the brain anatomy the sinus scan lacks is needed.
Held out for evaluation: InVesalius' "Cranium" head CT (invesalius-examples, GPL-2+;
108 slices 256 x 256 at 0.957 mm, 1.5 mm spacing, soft-tissue kernel, standard dose).
"""
import glob
import os
import sys
import plistlib
import tarfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SINUS_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "ct-head-sinus"))
CRANIUM_INV3 = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3"
COLIN_T1 = "/usr/share/mricron/templates/ch2.nii.gz"
COLIN_BRAIN = "/usr/share/mricron/templates/ch2bet.nii.gz"


def load_sinus(folder=SINUS_DIR):
    """-> (hu [Z, Y, X] float32, (dz, dy, dx) mm), slices sorted along the patient axis."""
    import pydicom
    files = [f for f in glob.glob(os.path.join(folder, "*")) if os.path.isfile(f)]
    if not files:
        raise SystemExit(f"{folder}: no files (the training CT lives in ../shared/data/ct-head-sinus)")
    slices = []
    for f in files:
        ds = pydicom.dcmread(f)
        if "PixelData" not in ds:
            continue
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slices.append((float(ds.ImagePositionPatient[2]), hu, [float(v) for v in ds.PixelSpacing]))
    slices.sort(key=lambda s: s[0])
    z = np.array([s[0] for s in slices])
    dz = float(np.median(np.diff(z)))
    return np.stack([s[1] for s in slices]), (dz, slices[0][2][0], slices[0][2][1])


def load_cranium(path=CRANIUM_INV3):
    """The held-out head CT -> (hu [Z, Y, X] float32, (dz, dy, dx) mm)."""
    if not os.path.exists(path):
        print(f"{path}: missing (install the Debian package invesalius-examples)", file=sys.stderr)
        sys.exit(77)  # "skipped" for CTest
    with tarfile.open(path, "r:gz") as tar:
        names = {os.path.basename(m.name): m for m in tar.getmembers()}
        main = plistlib.loads(tar.extractfile(names["main.plist"]).read())
        mat = main["matrix"]
        raw = tar.extractfile(names[mat["filename"]]).read()
    hu = np.frombuffer(raw, dtype=np.dtype(mat["dtype"]).newbyteorder("<")).reshape(mat["shape"]).astype(np.float32)
    sx, sy, sz = (float(v) for v in main["spacing"])
    return hu, (sz, sy, sx)


def nifti_affine(spacing_zyx):
    """RAS affine of a [Z, Y, X] array written transposed as [X, Y, Z], axial slices in
    the usual LPS order (x to the left, y to the back, z up)."""
    dz, dy, dx = spacing_zyx
    return np.diag([-dx, -dy, dz, 1.0])


def save_nifti(path, vol_zyx, spacing_zyx, dtype=np.int16):
    import nibabel as nib
    data = np.ascontiguousarray(np.transpose(vol_zyx, (2, 1, 0)))
    if np.issubdtype(dtype, np.integer):
        data = np.round(data)
    img = nib.Nifti1Image(data.astype(dtype), nifti_affine(spacing_zyx))
    img.header.set_xyzt_units("mm")
    nib.save(img, path)


def load_nifti_zyx(path):
    import nibabel as nib
    return np.transpose(np.asarray(nib.load(path).dataobj, dtype=np.float32), (2, 1, 0))


def kmeans_1d(values, centers, iterations=30):
    """Sorted class centres of 1-D values (tissue intensities), from initial guesses."""
    c = np.array(centers, dtype=np.float64)
    for _ in range(iterations):
        idx = np.argmin(np.abs(values[:, None] - c[None]), 1)
        c = np.array([values[idx == k].mean() if np.any(idx == k) else c[k] for k in range(len(c))])
    return np.sort(c)


def colin_ct_phantom(seed=0):
    """A CT-like head from the Colin27 T1 MR (mricron-data): tissue classes from the T1
    intensities and the brain mask, mapped to typical CT numbers, with partial-volume
    transitions and mild texture. Noise-free; [Z, Y, X] at 1 mm, axial slices from the
    skull base up (rows anterior to posterior). Only the slices above the skull base are
    used (no sinuses or petrous bone, which T1 cannot tell from air)."""
    import nibabel as nib
    from scipy import ndimage as ndi
    rng = np.random.default_rng(seed)
    t1 = np.asarray(nib.load(COLIN_T1).dataobj).astype(np.float32)  # [X(R), Y(A), Z(S)], 1 mm
    brain = ndi.binary_fill_holes(np.asarray(nib.load(COLIN_BRAIN).dataobj) > 0)
    head = ndi.binary_fill_holes(ndi.binary_closing(t1 > 25, iterations=3))
    csf, gm, wm = kmeans_1d(t1[brain].astype(np.float64), [40, 85, 115])
    hu = np.full(t1.shape, -1000.0, np.float32)
    # Brain: piecewise-linear T1 -> HU through the class centres (partial volume between them).
    b = t1[brain]
    hu[brain] = np.interp(b, [csf, gm, wm], [6.0, 38.0, 27.0])
    # Outside the brain: a CSF shell, then the skull (dark in T1: cortical bone; bright
    # within it: fatty marrow of the diploe), scalp (fat bright, muscle and skin mid-grey).
    near = ndi.binary_dilation(brain, iterations=2) & ~brain & head
    hu[near] = np.interp(t1[near], [csf, gm], [6.0, 30.0])
    dark = head & ~ndi.binary_dilation(brain, iterations=2) & (t1 < 0.5 * (csf + gm))
    skull = ndi.binary_closing(dark, iterations=2) & head & ~brain
    skull = ndi.binary_opening(skull, iterations=1)
    rest = head & ~brain & ~near
    fat_t1 = np.percentile(t1[rest], 92)
    soft = rest & ~skull
    hu[soft] = np.interp(t1[soft], [0.5 * (csf + gm), wm, fat_t1], [20.0, 45.0, -90.0])
    marrow = skull & (t1 > gm)
    cortical = skull & ~marrow
    hu[cortical] = 1100.0 + 500.0 * np.clip(rng.normal(0, 1, cortical.sum()), -2, 2)
    hu[marrow] = 500.0 + 150.0 * np.clip(rng.normal(0, 1, marrow.sum()), -2, 2)
    # Mild texture in soft tissue and brain (real tissue is not piecewise constant).
    tex = ndi.gaussian_filter(rng.normal(0, 1, t1.shape).astype(np.float32), 1.5)
    tex *= 2.0 / tex.std()
    hu[brain | soft | near] += tex[brain | soft | near]
    hu[skull] = ndi.gaussian_filter(hu, 0.7)[skull]
    hu = ndi.gaussian_filter(hu, 0.6)  # the scanner's resolution
    # Slices above the skull base: where the brain fills most of the head's cross-section.
    zs = [z for z in range(hu.shape[2]) if brain[:, :, z].sum() > 0.45 * max(head[:, :, z].sum(), 1)]
    hu = hu[:, :, min(zs):max(zs) + 1]
    # -> [Z, Y, X] with rows anterior to posterior and columns right to left (radiological).
    return np.ascontiguousarray(np.transpose(hu, (2, 1, 0))[:, ::-1, ::-1])
