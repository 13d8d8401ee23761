"""A straightforward Python implementation of MONAI's sliding_window_inference.

MONAI is not packaged for Debian; this follows monai.inferers.sliding_window_inference
(MONAI 1.x) step by step for the options Lumen supports: constant padding of images
smaller than the window, scan interval int(roi * (1 - overlap)), dense_patch_slices with
the last window snapped to the border, sw_batch_size windows per forward pass, constant or
gaussian importance maps (compute_importance_map), output = sum(pred * w) / sum(w).

Used as the reference by Lumen's tests (tests/models) and benchmark (bench/).
"""
import math

import torch
import torch.nn.functional as F


def scan_interval(image_size, roi_size, overlap):
    out = []
    for i in range(len(image_size)):
        if roi_size[i] == image_size[i]:
            out.append(int(roi_size[i]))
        else:
            interval = int(roi_size[i] * (1 - overlap))
            out.append(interval if interval > 0 else 1)
    return out


def dense_patch_starts(image_size, patch_size, interval):
    starts = []
    for d in range(len(image_size)):
        num = int(math.ceil(float(image_size[d]) / interval[d]))
        count = 1
        for k in range(num):
            if k * interval[d] + patch_size[d] >= image_size[d]:
                count = k + 1
                break
        dim = []
        for k in range(count):
            s = k * interval[d]
            s -= max(s + patch_size[d] - image_size[d], 0)
            dim.append(s)
        starts.append(dim)
    grids = torch.meshgrid(*[torch.tensor(s) for s in starts], indexing="ij")
    return torch.stack([g.flatten() for g in grids], dim=1).tolist()


def importance_map(patch_size, mode, sigma_scale, device):
    if mode == "constant":
        return torch.ones(patch_size, device=device)
    sigmas = [p * sigma_scale for p in patch_size]
    imap = None
    for i, p in enumerate(patch_size):
        x = torch.arange(start=-(p - 1) / 2.0, end=(p - 1) / 2.0 + 1, dtype=torch.float, device=device)[:p]
        x = torch.exp(x ** 2 / (-2 * sigmas[i] ** 2))
        imap = x if i == 0 else imap.unsqueeze(-1) * x[(None,) * i]
    imap = imap / torch.max(imap)
    min_non_zero = max(torch.min(imap).item(), 1e-3)
    return torch.clamp(imap, min=min_non_zero)


def sliding_window_inference(inputs, roi_size, sw_batch_size, predictor, overlap=0.25, mode="constant",
                             sigma_scale=0.125, cval=0.0, forward_time=None):
    """inputs: [B, C, *spatial]. Returns [B, C_out, *spatial]."""
    import time

    num_spatial = inputs.dim() - 2
    batch = inputs.shape[0]
    image_size_ = list(inputs.shape[2:])
    roi_size = [r if r > 0 else s for r, s in zip(roi_size, image_size_)]
    image_size = [max(image_size_[i], roi_size[i]) for i in range(num_spatial)]
    pad_size = []
    for k in range(num_spatial - 1, -1, -1):
        diff = max(roi_size[k] - inputs.shape[k + 2], 0)
        half = diff // 2
        pad_size.extend([half, diff - half])
    if any(pad_size):
        inputs = F.pad(inputs, pad=pad_size, mode="constant", value=cval)
    interval = scan_interval(image_size, roi_size, overlap)
    starts = dense_patch_starts(image_size, roi_size, interval)
    windows = [(b, s) for b in range(batch) for s in starts]
    imap = importance_map(roi_size, mode, sigma_scale, inputs.device)
    output = count = None
    for i in range(0, len(windows), sw_batch_size):
        chunk = windows[i:i + sw_batch_size]
        patches = [inputs[(b, slice(None)) + tuple(slice(s[d], s[d] + roi_size[d]) for d in range(num_spatial))]
                   for b, s in chunk]
        t0 = time.perf_counter()
        pred = predictor(torch.stack(patches))
        if forward_time is not None:
            forward_time[0] += time.perf_counter() - t0
        if output is None:
            output = torch.zeros([batch, pred.shape[1]] + image_size, dtype=torch.float32, device=inputs.device)
            count = torch.zeros([batch, 1] + image_size, dtype=torch.float32, device=inputs.device)
        for j, (b, s) in enumerate(chunk):
            sl = tuple(slice(s[d], s[d] + roi_size[d]) for d in range(num_spatial))
            output[(b, slice(None)) + sl] += pred[j].float() * imap
            count[(b, slice(None)) + sl] += imap
    output = output / count
    crop = tuple(slice(pad_size[(num_spatial - 1 - d) * 2], pad_size[(num_spatial - 1 - d) * 2] + image_size_[d])
                 for d in range(num_spatial))
    return output[(slice(None), slice(None)) + crop]
