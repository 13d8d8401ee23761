#!/usr/bin/python3
"""Reference MONAI bundle inference in plain numpy + torch, for checking Lumen's engine.

usage: monai_reference.py BUNDLE_DIR INPUT.nii.gz OUTPUT.nii.gz --grid-json grid.json

MONAI is not packaged here; this follows MONAI 1.5.0's source (monai/data/utils.py,
monai/transforms/{spatial,intensity,post}/, monai/networks/layers/spatial_transforms.py) for
LoadImaged (nibabel; its RAS affine kept) + EnsureChannelFirstd, Orientationd, Spacingd,
ScaleIntensityRanged, NormalizeIntensityd, ScaleIntensityd, SimpleInferer or
SlidingWindowInferer (bench/sliding_window_reference.py), Activationsd, Invertd, AsDiscreted
and KeepLargestConnectedComponentd. Anything else, or an option value it does not
implement, is refused (exit 2), never ignored.

Writes OUTPUT.nii.gz on the input's grid and affine (float32, channels last if several) and
grid.json: the shape and RAS affine the network saw. Without Invertd the output is put back
on the input grid anyway, as Lumen does (nearest if discrete): "implicit_invert": true.
"""
import argparse
import ast
import json
import os
import re
import sys

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from sliding_window_reference import sliding_window_inference  # noqa: E402

AFFINE_TOL = 1e-3  # monai.data.utils.AFFINE_TOL
GENERIC_KEYS = {"_target_", "keys", "allow_missing_keys", "meta_keys", "meta_key_postfix"}
# Options a dictionary transform may give once per key (then we pick the image's / pred's).
PER_KEY = {"mode", "padding_mode", "align_corners", "dtype", "argmax", "threshold", "rounding",
           "to_onehot", "nearest_interp", "softmax", "sigmoid"}


class Refused(Exception):
    pass


# ---------------------------------------------------------------- inference.json
def lookup(root, ref, where):
    node = root
    for part in re.split(r"::|#", ref):  # "@a#b#0" (and MONAI's newer "@a::b::0")
        if not (part in node if isinstance(node, dict) else
                isinstance(node, list) and part.isdigit() and int(part) < len(node)):
            raise Refused(f"{where}: reference '@{ref}' not found")
        node = node[part] if isinstance(node, dict) else node[int(part)]
    return node


def resolve(v, root, where, depth=0):
    """Plain '@key' references and '$<python literal>' only: Lumen runs no Python."""
    if depth > 32:
        raise Refused(f"{where}: references nest too deep")
    if isinstance(v, str):
        expr = v[1:].strip() if v.startswith("$") else v
        if re.fullmatch(r"@[\w#:]+", expr):
            return resolve(lookup(root, expr[1:], where), root, where, depth + 1)
        if v.startswith("%"):
            raise Refused(f"{where}: '%' macros are not supported")
        if v.startswith("$"):
            try:
                return resolve(ast.literal_eval(expr), root, where, depth + 1)
            except (ValueError, SyntaxError):
                raise Refused(f"{where}: Python expression {v!r} is neither a plain reference nor a literal")
        return v
    if isinstance(v, (list, tuple)):
        return [resolve(e, root, where, depth + 1) for e in v]
    if isinstance(v, dict):
        return {k: resolve(e, root, f"{where}#{k}", depth + 1) for k, e in v.items()}
    return v


def follow(v, root, where):
    """Structure only (a transform list or one transform): its options are resolved on use."""
    for _ in range(32):
        expr = v[1:].strip() if isinstance(v, str) and v.startswith("$") else v
        if not (isinstance(expr, str) and re.fullmatch(r"@[\w#:]+", expr)):
            return v
        v = lookup(root, expr[1:], where)
    raise Refused(f"{where}: references nest too deep")


def transform_list(root, key):
    v = follow(root.get(key), root, key)
    if v is None:
        return []
    if isinstance(v, dict) and target(v) == "Compose":
        v = follow(v.get("transforms", []), root, key + "#transforms")
    if not isinstance(v, list):
        raise Refused(f"{key}: expected a Compose or a list of transforms")
    return [follow(t, root, f"{key}#{i}") for i, t in enumerate(v)]


def target(t):
    return str(t.get("_target_", "")).split(".")[-1] if isinstance(t, dict) else ""


class Opts:
    """One transform's options: unknown keys refused, per-key sequences narrowed to `key`."""

    def __init__(self, t, root, where, key, allowed):
        if set(t) - GENERIC_KEYS - set(allowed):
            raise Refused(f"{where}: option(s) {sorted(set(t) - GENERIC_KEYS - set(allowed))} not supported")
        self.t, self.root, self.where = t, root, where
        keys = resolve(t.get("keys", key), root, where)
        self.keys = keys if isinstance(keys, list) else [keys]
        self.applies, self.index = key in self.keys, self.keys.index(key) if key in self.keys else 0

    def __call__(self, name, default=None):
        if name not in self.t:
            return default
        v = self.t[name]  # a dtype ("$np.float32") is checked as written, never evaluated
        v = v if name == "dtype" else resolve(v, self.root, f"{self.where}#{name}")
        if name in PER_KEY and len(self.keys) > 1 and isinstance(v, list) and len(v) == len(self.keys):
            v = v[self.index]
        return default if v is None else v

    def require(self, name, allowed_values):
        v = self(name, allowed_values[0])
        if v not in allowed_values:
            raise Refused(f"{self.where}#{name}: {v!r} is not supported (only {allowed_values})")
        return v


# ---------------------------------------------------------------- geometry
def column_norms(a):  # affine_to_spacing(suppress_zeros=True)
    n = np.sqrt(np.sum(a[:3, :3] ** 2, axis=0))
    return np.where(n == 0, 1.0, n)


def zoom_affine(affine, scale, diagonal):
    """monai.data.utils.zoom_affine: new spacing along the input's own axes, no shear, no translation.
    The directions are the Q of a QR (Gram-Schmidt) of the 3x3 part: for an orthogonal affine,
    each column normalised; a sheared one keeps axis 0 and re-orthogonalises the others."""
    norm = column_norms(affine)
    scale = np.where(np.asarray(scale, float) > 0, scale, norm)  # non-positive pixdim: keep
    if diagonal:
        return np.diag(np.append(scale, 1.0))
    rzs = affine[:3, :3]
    upper = np.linalg.cholesky(rzs.T @ rzs).T  # R of rzs = Q R, positive diagonal
    out = np.eye(4)
    out[:3, :3] = (rzs @ np.linalg.inv(upper)) @ np.diag(np.sign(np.diag(upper)) * np.abs(scale))
    return out


def compute_shape_offset(shape, in_aff, out_aff, scale_extent):
    """monai.data.utils.compute_shape_offset. Shape: round (half to even: np.round) of the extent
    of the input's corner voxel centres in output index units, + 1. Offset: the world position
    of the input corner that is smallest on every output axis (within an absolute 1e-8, so
    float32-stored oblique affines often miss it); if none is, MONAI "centre"-aligns using
    shape / 2 rather than (shape - 1) / 2, which moves the grid by a fraction of a voxel."""
    shape = np.asarray(shape, float)
    coords = [(-0.5, d - 0.5) if scale_extent else (0.0, d - 1.0) for d in shape]
    corners = np.asarray(np.meshgrid(*coords, indexing="ij")).reshape(3, -1)
    corners = np.concatenate([corners, np.ones_like(corners[:1])])
    out_c = (np.linalg.solve(out_aff, in_aff) @ corners)[:3]
    world = in_aff @ corners
    ext = np.ptp(out_c, axis=1)
    out_shape = np.round(ext) if scale_extent else np.round(ext + 1.0)
    offset = None
    for i in range(corners.shape[1]):
        if np.allclose(np.min(out_c - out_c[:, i:i + 1], axis=1), 0.0, rtol=AFFINE_TOL):  # atol 1e-8
            offset = world[:3, i]
            break
    if offset is None:
        offset = in_aff[:3, :3] @ (shape / 2.0) + in_aff[:3, 3] - out_aff[:3, :3] @ (out_shape / 2.0)
    if scale_extent:
        in_off = np.append(0.5 * (shape / out_shape - 1.0), 1.0)
        offset = np.abs((in_aff @ in_off)[:3]) * np.sign(offset)
    return out_shape.astype(int), offset


def norm_matrix(size):
    """Voxel index -> grid_sample coordinate for align_corners=False: u = (2 i + 1) / n - 1."""
    n = np.asarray(size, float)
    return np.block([[np.diag(2.0 / n), (1.0 / n - 1.0)[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])


def resample(img, src, dst, out_shape, mode, padding, align_corners):
    """monai.transforms.spatial.functional.spatial_resample (torch path), float64 throughout.
    Output voxel j samples input index xform @ j, xform = src^-1 dst. MONAI always normalises with
    the align_corners=False convention (to_norm_affine) and passes align_corners to affine_grid /
    grid_sample: False maps voxel centres exactly; True (MONAI <= 1.5) maps output index j to
    ((xform @ (j m / (m - 1) - 1/2)) + 1/2) (n - 1) / n, i.e. voxel edges stretched to centres."""
    xform = np.linalg.solve(src, dst)
    if tuple(out_shape) == tuple(img.shape[1:]) and (np.allclose(src, dst, rtol=1e-5, atol=AFFINE_TOL) or
                                                      np.allclose(xform, np.eye(4), rtol=1e-5, atol=AFFINE_TOL)):
        return img.float(), src  # MONAI: "no significant change", data and affine untouched
    if mode not in ("bilinear", "nearest") or padding not in ("zeros", "border", "reflection"):
        raise Refused(f"resampling mode {mode!r} / padding {padding!r} not supported")
    theta = norm_matrix(img.shape[1:]) @ xform @ np.linalg.inv(norm_matrix(out_shape))
    t = theta.copy()  # grid_sample's coordinates are (x, y, z) = (k, j, i): reverse the axes
    t[:3, :3], t[:3, 3] = theta[:3, :3][::-1, ::-1], theta[:3, 3][::-1]
    grid = F.affine_grid(torch.from_numpy(t[:3].copy())[None], [1, img.shape[0], *[int(s) for s in out_shape]],
                         align_corners=align_corners)
    out = F.grid_sample(img.double()[None], grid, mode=mode, padding_mode=padding, align_corners=align_corners)
    return out[0].float(), src @ xform


def reorient(img, affine, axcodes=None, closest_canonical=False):
    """monai.transforms.Orientation: flip + permute only (no interpolation), via nibabel's ornt."""
    src = nib.orientations.io_orientation(affine)
    ornt = src if closest_canonical else nib.orientations.ornt_transform(src, nib.orientations.axcodes2ornt(axcodes))
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, img.shape[1:])
    flips = [i + 1 for i in range(3) if ornt[i, 1] == -1]
    out = torch.flip(img, flips) if flips else img
    return out.permute([0] + [int(a) + 1 for a in np.argsort(ornt[:, 0])]).contiguous(), new_affine


def spacing(img, affine, o):
    pixdim = o("pixdim")
    pixdim = list(pixdim) if isinstance(pixdim, (list, tuple)) else [pixdim]
    pixdim = np.array((pixdim + [pixdim[-1]] * 3)[:3], float)  # shorter: pad with the last value
    orig = column_norms(affine)  # an axis already within AFFINE_TOL of its target keeps its own spacing
    new = zoom_affine(affine, np.where(np.abs(orig - pixdim) <= AFFINE_TOL, orig, pixdim), bool(o("diagonal", False)))
    shape, offset = compute_shape_offset(img.shape[1:], affine, new, bool(o("scale_extent", False)))
    new[:3, 3] = offset
    mode, padding, ac = o("mode", "bilinear"), o("padding_mode", "border"), bool(o("align_corners", False))
    out, out_affine = resample(img, affine, new, shape, mode, padding, ac)
    return out, out_affine, {"src_affine": affine, "shape": tuple(img.shape[1:]), "mode": mode,
                             "padding": padding, "align_corners": ac}


def invert(y, affine, trace, nearest):
    """Invertd: the applied spatial transforms undone in reverse order. Spacing: resample from the
    current grid back to (pre-Spacing affine, shape); nearest_interp=True forces mode 'nearest' and
    align_corners False, else the forward mode/align_corners; padding always the forward one.
    Orientation: Orientation(axcodes=aff2axcodes(affine before it)) applied to the current data."""
    for kind, op in reversed(trace):
        if kind == "spacing":
            y, affine = resample(y, affine, op["src_affine"], op["shape"], "nearest" if nearest else op["mode"],
                                 op["padding"], False if nearest else op["align_corners"])
        else:
            y, affine = reorient(y, affine, "".join(nib.orientations.aff2axcodes(op["orig_affine"])))
    return y, affine


# ---------------------------------------------------------------- intensity (float32, as MONAI)
def scale_intensity_range(x, a_min, a_max, b_min, b_max, clip):
    if a_max - a_min == 0.0:
        return (x - a_min if b_min is None else x - a_min + b_min).float()
    x = (x - a_min) / (a_max - a_min)
    if b_min is not None and b_max is not None:
        x = x * (b_max - b_min) + b_min
    return (torch.clamp(x, b_min, b_max) if clip else x).float()


def normalize_intensity(x, nonzero, channel_wise):
    def one(d):  # mean and population std (unbiased=False) as Python floats; std 0 -> 1
        d = d.float().clone()
        v = d[d != 0] if nonzero else d
        if v.numel() == 0:
            return d
        sub, div = torch.mean(v).item(), torch.std(v, unbiased=False).item() or 1.0
        if nonzero:
            d[d != 0] = (v - sub) / div
            return d
        return (d - sub) / div
    return torch.stack([one(c) for c in x]) if channel_wise else one(x)


def scale_intensity(x, minv, maxv, channel_wise):
    def one(a):
        a = a.float()
        lo, hi = a.min(), a.max()
        if lo == hi:
            return a * minv if minv is not None else a
        n = (a - lo) / (hi - lo)
        return n if minv is None or maxv is None else n * (maxv - minv) + minv
    return torch.stack([one(c) for c in x]) if channel_wise else one(x)


# ---------------------------------------------------------------- connected components
def label_components(mask, connectivity):
    """Labels 1..n numbered by first voxel in C (raster) order, like skimage.measure.label.
    Neighbours: offsets with at most `connectivity` non-zero steps (None: 3, i.e. 26-connected)."""
    c = 3 if connectivity is None else int(connectivity)
    offs = [d for d in np.ndindex(3, 3, 3) if 0 < sum(abs(e - 1) for e in d) <= c]
    (n0, n1, n2), fg = mask.shape, mask.ravel()
    lab = np.where(mask, np.arange(mask.size).reshape(mask.shape), mask.size)
    while True:  # min-label propagation + pointer jumping: converges to each component's first voxel
        pad, new = np.pad(lab, 1, constant_values=mask.size), lab.copy()
        for d in offs:
            new = np.minimum(new, pad[d[0]:d[0] + n0, d[1]:d[1] + n1, d[2]:d[2] + n2])
        new[~mask] = mask.size
        flat = new.ravel()
        while not np.array_equal(flat[fg], flat[flat[fg]]):
            flat[fg] = flat[flat[fg]]
        if np.array_equal(new, lab):
            break
        lab = new
    roots = np.unique(lab[mask])
    out = np.zeros(mask.shape, np.int64)
    out[mask] = np.searchsorted(roots, lab[mask]) + 1
    return out, len(roots)


def largest_components(fg, connectivity, num_components):
    """monai.transforms.utils.get_largest_connected_component_mask: ties go wherever numpy's
    argsort of the component sizes puts them (MONAI does not define it)."""
    features, n = label_components(fg, connectivity)
    if n <= num_components:
        return fg.copy()
    keep = np.argsort(np.bincount(features[features > 0]))[::-1][:num_components]
    return np.isin(features, keep)


def keep_largest(y, o):
    applied, onehot_opt = o("applied_labels"), o("is_onehot")
    conn, num, independent = o("connectivity"), int(o("num_components", 1)), bool(o("independent", True))
    onehot = y.shape[0] > 1 if onehot_opt is None else bool(onehot_opt)
    img = y.numpy().copy()
    if applied is None:
        labels = [i for i in range(1, len(img)) if img[i].sum() > 0] if onehot else [v for v in np.unique(img) if v]
    else:
        labels = applied if isinstance(applied, list) else [applied]
    if independent:
        for lab in labels:
            chan = img[int(lab)] if onehot else img[0]
            fg = chan > 0 if onehot else chan == lab
            chan[fg & ~largest_components(fg, conn, num)] = 0
    else:
        fg = (img[[int(i) for i in labels]] == 1).any(0) if onehot else np.isin(img[0], labels)
        drop = fg & ~largest_components(fg, conn, num)
        for chan in ([img[int(i)] for i in labels] if onehot else [img[0]]):
            chan[drop] = 0
    return torch.from_numpy(img)


# ---------------------------------------------------------------- pipeline
PRE = {"Orientationd": ["axcodes", "as_closest_canonical", "labels", "lazy"],
       "Spacingd": ["pixdim", "diagonal", "mode", "padding_mode", "align_corners", "dtype", "scale_extent",
                    "recompute_affine", "min_pixdim", "max_pixdim", "lazy"],
       "ScaleIntensityRanged": ["a_min", "a_max", "b_min", "b_max", "clip", "dtype"],
       "NormalizeIntensityd": ["subtrahend", "divisor", "nonzero", "channel_wise", "dtype"],
       "ScaleIntensityd": ["minv", "maxv", "factor", "channel_wise", "dtype"]}
POST = {"Activationsd": ["softmax", "sigmoid", "other", "dim"],
        "AsDiscreted": ["argmax", "to_onehot", "threshold", "rounding", "dim", "keepdim", "dtype"],
        "KeepLargestConnectedComponentd": ["applied_labels", "is_onehot", "independent", "connectivity",
                                           "num_components"],
        "Invertd": ["transform", "orig_keys", "orig_meta_keys", "nearest_interp", "to_tensor", "device", "post_func"]}
NOOPS = {"LoadImaged", "EnsureChannelFirstd", "AddChanneld", "EnsureTyped", "ToTensord", "ToDeviced", "SaveImaged",
         "CopyItemsd"}
# Options whose only supported value is MONAI's default (first entry); Spacing resamples in float64
# (dtype=None would mean float32), intensity transforms output float32.
FIXED = {"lazy": [False], "recompute_affine": [False], "min_pixdim": [None], "max_pixdim": [None],
         "subtrahend": [None], "divisor": [None], "factor": [None], "other": [None], "to_onehot": [None],
         "keepdim": [True], "post_func": [None],
         "dtype": ["float32", "$np.float32", "$torch.float32", "$torch.float"]}
SPACING_DTYPES = ["float64", "$np.float64", "$torch.float64"]


def steps(root, section, table, key):
    """(kind, Opts) for each transform of a section that acts on `key`; anything unknown is refused."""
    for i, t in enumerate(transform_list(root, section)):
        where, kind = f"{section}#{i}", target(t) if target(t).endswith("d") else target(t) + "d"
        if kind in NOOPS or (kind == "CastToTyped" and "float32" in str(t.get("dtype", "float32"))):
            continue
        if kind not in table:
            raise Refused(f"{where}: transform {target(t)!r} is not supported by this reference")
        o = Opts(t, root, where, key, table[kind])
        for opt, ok in FIXED.items():
            if opt in table[kind]:
                o.require(opt, SPACING_DTYPES if (kind, opt) == ("Spacingd", "dtype") else ok)
        if o.applies:
            yield kind, o


def preprocess(x, affine, root):
    trace = []  # the invertible (spatial) steps, for Invertd
    for kind, o in steps(root, "preprocessing", PRE, "image"):
        if kind == "Orientationd":
            if o("axcodes") is None and not o("as_closest_canonical", False):
                raise Refused(f"{o.where}: Orientationd needs axcodes")
            if o("labels", None) not in (None, [["L", "R"], ["P", "A"], ["I", "S"]]):
                raise Refused(f"{o.where}#labels: only the default labels are supported")
            trace.append(("orientation", {"orig_affine": affine}))
            x, affine = reorient(x, affine, o("axcodes"), bool(o("as_closest_canonical", False)))
        elif kind == "Spacingd":
            x, affine, op = spacing(x, affine, o)
            trace.append(("spacing", op))
        elif kind == "ScaleIntensityRanged":
            x = scale_intensity_range(x, o("a_min"), o("a_max"), o("b_min"), o("b_max"), bool(o("clip", False)))
        elif kind == "NormalizeIntensityd":
            x = normalize_intensity(x, bool(o("nonzero", False)), bool(o("channel_wise", False)))
        else:
            x = scale_intensity(x, o("minv", 0.0), o("maxv", 1.0), bool(o("channel_wise", False)))
    return x, affine, trace


def infer(x, root, model):
    inf = follow(root.get("inferer", {"_target_": "SimpleInferer"}), root, "inferer")
    arg = lambda k, default: resolve(inf.get(k, default), root, f"inferer#{k}")  # noqa: E731 (used keys only)
    with torch.no_grad():
        if target(inf) == "SimpleInferer":
            return model(x[None])
        known = {"_target_", "roi_size", "sw_batch_size", "overlap", "mode", "sigma_scale", "padding_mode", "cval",
                 "sw_device", "device", "progress", "cache_roi_weight_map", "cpu_thresh"}
        if target(inf) != "SlidingWindowInferer" or set(inf) - known or arg("padding_mode", "constant") != "constant":
            raise Refused(f"inferer: {target(inf)!r} with options {sorted(inf)} is not supported")
        roi = arg("roi_size", None)
        roi = roi if isinstance(roi, list) else [roi] * 3
        if len(roi) != 3:
            raise Refused(f"inferer#roi_size: {roi} is not 3D (this reference reads 3D images only)")
        return sliding_window_inference(x[None], roi, int(arg("sw_batch_size", 1)), model,
                                        overlap=float(arg("overlap", 0.25)), mode=arg("mode", "constant"),
                                        sigma_scale=float(arg("sigma_scale", 0.125)), cval=float(arg("cval", 0.0)))


def postprocess(y, root, model_affine, trace, grid):
    discrete = inverted = False
    for kind, o in steps(root, "postprocessing", POST, "pred"):
        if kind == "Activationsd":
            if o("softmax", False) and o("sigmoid", False):
                raise Refused(f"{o.where}: sigmoid and softmax together")
            y = torch.sigmoid(y) if o("sigmoid", False) else y
            y = torch.softmax(y, dim=int(o("dim", 0))) if o("softmax", False) else y
        elif kind == "AsDiscreted":  # argmax, then threshold, then rounding, as AsDiscrete does; output float
            o.require("dim", [0])
            threshold, rounding = o("threshold"), o("rounding")
            if isinstance(threshold, bool):
                raise Refused(f"{o.where}#threshold: MONAI raises on a boolean threshold (give a value)")
            y = torch.argmax(y, dim=0, keepdim=True) if o("argmax", False) else y
            y = y >= threshold if threshold is not None else y
            y = torch.round(y.float()) if o.require("rounding", [None, "torchrounding"]) else y
            discrete = discrete or bool(o("argmax", False)) or threshold is not None or rounding is not None
            y = y.float()
        elif kind == "KeepLargestConnectedComponentd":
            y = keep_largest(y, o)
        elif y.dim() != 4:
            raise Refused(f"{o.where}: Invertd needs a spatial output")
        else:
            y, _ = invert(y, model_affine, trace, bool(o("nearest_interp", True)))
            inverted = True
    if y.dim() == 4 and not inverted and trace:  # as Lumen does; nearest for labels
        y, _ = invert(y, model_affine, trace, discrete)
        grid["implicit_invert"] = True
        print("note: no Invertd in the bundle; output put back on the input grid", file=sys.stderr)
    return y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for a in ("bundle", "input", "output"):
        ap.add_argument(a)
    ap.add_argument("--grid-json", required=True)
    args = ap.parse_args()
    with open(os.path.join(args.bundle, "configs", "inference.json")) as f:
        root = json.load(f)
    nii = nib.load(args.input)
    data = np.asanyarray(nii.dataobj).astype(np.float32)  # NibabelReader, LoadImage(dtype=float32)
    if data.ndim != 3:
        raise Refused(f"{args.input}: only 3D images are supported, got shape {data.shape}")
    orig_affine = np.array(nii.affine, np.float64)  # nibabel's RAS affine, kept as is by MONAI

    x, model_affine, trace = preprocess(torch.from_numpy(data)[None], orig_affine.copy(), root)  # channel first
    grid = {"shape": [int(s) for s in x.shape[1:]], "affine": model_affine.tolist()}
    model = torch.jit.load(os.path.join(args.bundle, "models", "model.ts"), map_location="cpu").eval()
    y = infer(x, root, model)[0].float()  # decollated: post-processing sees one [C, *spatial] sample
    y = postprocess(y, root, model_affine, trace, grid)

    if y.dim() != 4:  # a classifier: no image, the vector goes into the JSON
        grid["output"] = y.reshape(-1).tolist()
    else:
        if tuple(y.shape[1:]) != data.shape:
            raise RuntimeError(f"output grid {tuple(y.shape[1:])} is not the input's {data.shape}")
        out = y[0].numpy() if y.shape[0] == 1 else np.moveaxis(y.numpy(), 0, -1)
        nib.save(nib.Nifti1Image(out.astype(np.float32), orig_affine), args.output)
    with open(args.grid_json, "w") as f:
        json.dump(grid, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except Refused as e:
        print(f"monai_reference: refused: {e}", file=sys.stderr)
        sys.exit(2)
