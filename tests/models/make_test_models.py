#!/usr/bin/python3
"""Builds the small TorchScript models and MONAI bundles the models/ tests use.

usage: make_test_models.py OUT_DIR

Everything is seeded. Besides bundles it writes reference results of a straightforward
Python sliding-window inference (bench/sliding_window_reference.py, MONAI's algorithm)
for the C++ implementation to match.
"""
import copy
import json
import os
import shutil
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from sliding_window_reference import sliding_window_inference  # noqa: E402

OUT = sys.argv[1]
torch.manual_seed(1234)
torch.set_num_threads(1)


class Pointwise3d(nn.Module):
    """1x1x1 convolutions only: exactly translation-equivariant, so any window tiling must
    reproduce the whole-volume forward pass."""

    def __init__(self, out_channels=2):
        super().__init__()
        self.a = nn.Conv3d(1, 4, 1)
        self.b = nn.Conv3d(4, out_channels, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


class Threshold3d(nn.Module):
    """Label 1 where the (scaled) input is above 0.5: a fast, predictable segmentation for
    the GUI tests."""

    def forward(self, x):
        return torch.cat([0.5 - x, x - 0.5], 1)


class Conv3d(nn.Module):
    """3x3x3 convolutions with zero padding: what real networks do at window borders."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(1, 4, 3, padding=1)
        self.b = nn.Conv3d(4, 3, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class Identity(nn.Module):
    def forward(self, x):
        return x * 1.0


class Pointwise2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 3, 1)

    def forward(self, x):
        return self.a(x)


class Classifier3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


class Classifier2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class Smooth3d(nn.Module):
    """Three channels of fixed, smooth functions of the input (a 5x5x5 mean, its square and a
    constant): argmax regions with long, curved boundaries, like a real segmentation's."""

    def __init__(self):
        super().__init__()
        self.mean = nn.Conv3d(1, 1, 5, padding=2, bias=False)
        nn.init.constant_(self.mean.weight, 1.0 / 125)

    def forward(self, x):
        m = self.mean(x)
        return torch.cat([m, 1.2 * m * m, torch.full_like(m, 0.35)], 1)


class IndexAlong(nn.Module):
    """Outputs, at every voxel, its own array index along one axis of the network's input:
    mapped back to the input grid, the model grid's affine must turn these into the voxel's
    own RAS position, which no consistently wrong orientation convention can fake."""

    def __init__(self, axis):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        n = x.shape[2 + self.axis]
        shape = [1, 1, 1, 1, 1]
        shape[2 + self.axis] = n
        idx = torch.arange(n, dtype=x.dtype, device=x.device).view(shape)
        return idx.expand(x.shape[0], 1, x.shape[2], x.shape[3], x.shape[4]) + 0.0 * x


class WrongInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv3d(2, 2, 1)

    def forward(self, x):
        return self.a(x)


class SdGrader(nn.Module):
    """Measures each slice as the CT dose grader does, but exactly: the last column is
    ln(100 x the SD of the slice's values); the classes "5", "10", "20" score how near that
    is to their ln SD."""

    def __init__(self):
        super().__init__()
        self.register_buffer("centres", torch.log(torch.tensor([[5.0, 10.0, 20.0]])))

    def forward(self, x):
        s = torch.log(torch.std(x.flatten(1), 1, False, True) * 100 + 1e-6)  # [B, 1]
        return torch.cat([-4 * (s - self.centres) ** 2, s], 1)


class SizedGrader(nn.Module):
    """The CT dose grader's output model, written from its description (lumen.json
    estimate.size_reference): the last column is s = ln(mean |x| over the pixels with |x| <
    500), so a +-a checkerboard in water reads ln a; each class column is the log of the
    probability that s plus logistic noise of scale `spread` lies in the class's bin (bins
    between the ln edges, the outer two one bin width wide)."""

    def __init__(self, edges, spread):
        super().__init__()
        e = torch.log(torch.tensor(edges, dtype=torch.float64))
        w = e[1] - e[0]
        self.register_buffer("lower", torch.cat([e[:1] - w, e]).float()[None])
        self.register_buffer("upper", torch.cat([e, e[-1:] + w]).float()[None])
        self.spread = spread

    def forward(self, x):
        f = x.flatten(1)
        m = (f.abs() < 500).float()
        s = torch.log((f.abs() * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0))
        inside = torch.sigmoid((self.upper - s) / self.spread) - torch.sigmoid((self.lower - s) / self.spread)
        return torch.cat([torch.log(inside.clamp(min=1e-30)), s], 1)


def metadata(name, out_channels, out_type="image", out_format="segmentation", spatial_shape=None, channel_def=None,
             in_shape=None):
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": "0.1.0",
        "name": name,
        "description": "Lumen test model",
        "authors": "Lumen tests",
        "license": "Apache-2.0",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1,
                                 "spatial_shape": in_shape or [16, 16, 16], "dtype": "float32",
                                 "value_range": [0, 1], "is_patch_data": True,
                                 "channel_def": {"0": "image"}}},
            "outputs": {"pred": {"type": out_type, "format": out_format, "num_channels": out_channels,
                                 "spatial_shape": spatial_shape if spatial_shape is not None else [16, 16, 16],
                                 "dtype": "float32", "value_range": [0, 1], "is_patch_data": True,
                                 "channel_def": channel_def or {"0": "background", "1": "object"}}},
        },
    }


def write_bundle(name, module, meta, inference, extras=None):
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "configs"), exist_ok=True)
    os.makedirs(os.path.join(d, "models"), exist_ok=True)
    with open(os.path.join(d, "configs", "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2)
    with open(os.path.join(d, "configs", "inference.json"), "w") as f:
        json.dump(inference, f, indent=2)
    if extras is not None:
        with open(os.path.join(d, "configs", "lumen.json"), "w") as f:
            json.dump(extras, f, indent=2)
    if module is not None:
        torch.jit.script(module.eval()).save(os.path.join(d, "models", "model.ts"))
    return d


def compose(*transforms):
    return {"_target_": "Compose", "transforms": list(transforms)}


def sw(roi, batch=2, overlap=0.5, mode="constant"):
    return {"_target_": "SlidingWindowInferer", "roi_size": roi, "sw_batch_size": batch, "overlap": overlap, "mode": mode}


# The inference.json of the MONAI Model Zoo's spleen_ct_segmentation bundle, as published.
SPLEEN_INFERENCE = {
    "imports": ["$import glob", "$import os"],
    "bundle_root": ".",
    "output_dir": "$@bundle_root + '/eval'",
    "dataset_dir": "/workspace/data/Task09_Spleen",
    "datalist": "$list(sorted(glob.glob(@dataset_dir + '/imagesTs/*.nii.gz')))",
    "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
    "network_def": {
        "_target_": "UNet",
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "channels": [16, 32, 64, 128, 256],
        "strides": [2, 2, 2, 2],
        "num_res_units": 2,
        "norm": "batch",
    },
    "network": "$@network_def.to(@device)",
    "preprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 2.0], "mode": "bilinear"},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -57, "a_max": 164, "b_min": 0, "b_max": 1,
             "clip": True},
            {"_target_": "EnsureTyped", "keys": "image"},
        ],
    },
    "dataset": {"_target_": "Dataset", "data": "$[{'image': i} for i in @datalist]", "transform": "@preprocessing"},
    "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False,
                   "num_workers": 4},
    "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [96, 96, 96], "sw_batch_size": 4, "overlap": 0.5},
    "postprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
             "meta_key_postfix": "meta_dict", "nearest_interp": False, "to_tensor": True},
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            {"_target_": "SaveImaged", "keys": "pred", "meta_keys": "pred_meta_dict", "output_dir": "@output_dir",
             "output_postfix": "seg", "resample": False},
        ],
    },
    "handlers": [
        {"_target_": "CheckpointLoader", "load_path": "$@bundle_root + '/models/model.pt'",
         "load_dict": {"model": "@network"}},
        {"_target_": "StatsHandler", "iteration_log": False},
    ],
    "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
                  "network": "@network", "inferer": "@inferer", "postprocessing": "@postprocessing",
                  "val_handlers": "@handlers", "amp": True},
    "evaluating": ["$setattr(torch.backends.cudnn, 'benchmark', True)", "$@evaluator.run()"],
}


def save_tensor(name, t):
    t = t.detach().contiguous().float()
    t.numpy().astype("<f4").tofile(os.path.join(OUT, "reference", name + ".bin"))
    return list(t.shape)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "reference"))

    pointwise = Pointwise3d()
    conv = Conv3d()
    seg_post = compose({"_target_": "Activationsd", "keys": "pred", "softmax": True},
                       {"_target_": "AsDiscreted", "keys": "pred", "argmax": True})

    write_bundle("pointwise3d", pointwise, metadata("pointwise3d", 2),
                 {"preprocessing": compose({"_target_": "EnsureChannelFirstd", "keys": "image"}),
                  "inferer": sw([16, 16, 16], batch=3), "postprocessing": seg_post})
    write_bundle("conv3d", conv, metadata("conv3d", 3, channel_def={"0": "a", "1": "b", "2": "c"}),
                 {"inferer": sw([16, 16, 16]), "postprocessing": seg_post})
    # Identity enhancement through every spatial and intensity step: the result must be
    # the input again, on the input's grid, in its units.
    write_bundle("identity3d", Identity(),
                 metadata("identity3d", 1, out_type="image", out_format="hounsfield", channel_def={"0": "image"}),
                 {"preprocessing": compose(
                     {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                     {"_target_": "Spacingd", "keys": "image", "pixdim": [1.3, 0.9, 2.2], "mode": "bilinear"},
                     {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1000, "a_max": 1000, "b_min": 0,
                      "b_max": 1, "clip": False}),
                  "inferer": sw([24, 24, 24], overlap=0.25, mode="gaussian"),
                  "postprocessing": compose({"_target_": "Invertd", "keys": "pred", "nearest_interp": False})},
                 {"task": "enhancement", "display_name": "Identity (test)"})
    write_bundle("identity2d", Identity(),
                 metadata("identity2d", 1, out_type="image", out_format="hounsfield", channel_def={"0": "image"},
                          in_shape=[32, 32], spatial_shape=[32, 32]),
                 {"preprocessing": compose({"_target_": "Orientationd", "keys": "image", "axcodes": "LPS"},
                                           {"_target_": "NormalizeIntensityd", "keys": "image"}),
                  "inferer": sw([32, 32], batch=4)},
                 {"task": "enhancement"})
    write_bundle("pointwise2d", Pointwise2d(), metadata("pointwise2d", 3, in_shape=[32, 32], spatial_shape=[32, 32],
                                                        channel_def={"0": "bg", "1": "one", "2": "two"}),
                 {"inferer": sw([20, 20], batch=5), "postprocessing": seg_post}, {"plane": "axial"})
    # The same network without saying which plane it was trained on: refused at run time.
    write_bundle("noplane2d", Pointwise2d(), metadata("noplane2d", 3, in_shape=[32, 32], spatial_shape=[32, 32],
                                                      channel_def={"0": "bg", "1": "one", "2": "two"}),
                 {"inferer": sw([20, 20], batch=5), "postprocessing": seg_post})
    write_bundle("classifier3d", Classifier3d(),
                 metadata("classifier3d", 3, out_type="probabilities", out_format="classification", spatial_shape=[],
                          channel_def={"0": "low", "1": "medium", "2": "high"}, in_shape=[16, 16, 16]),
                 {"preprocessing": compose({"_target_": "ScaleIntensityd", "keys": "image"}),
                  "inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification"})
    write_bundle("classifier2d", Classifier2d(),
                 metadata("classifier2d", 2, out_type="probabilities", out_format="classification", spatial_shape=[],
                          channel_def={"0": "no", "1": "yes"}, in_shape=[32, 32]),
                 {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial",
                  "suggest": {"when": ["no", "yes"], "model": "gui_enhance", "text": "Enhance this series"}})
    # A classifier with an estimate (lumen.json "estimate"), as the CT dose grader.
    grader_meta = metadata("grader2d", 4, out_type="probabilities", out_format="classification", spatial_shape=[],
                           channel_def={"0": "5", "1": "10", "2": "20", "3": "ln noise SD"}, in_shape=["*", "*"])
    estimate = {"name": "noise SD", "unit": "HU", "transform": "exp", "known_range": [3, 30],
                "class_edges": [50 ** 0.5, 200 ** 0.5]}  # between 5, 10 and 20
    write_bundle("grader2d", SdGrader(), grader_meta, {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial", "estimate": estimate})
    # The same, scaled so that the CT sample's slices (SD of their HU: some hundreds) lie
    # inside its range, for the GUI.
    write_bundle("gui_grader", SdGrader(), {**grader_meta, "name": "gui_grader"},
                 {"preprocessing": compose({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1000, "a_max": 1000,
                                            "b_min": 0.0, "b_max": 0.4}),
                  "inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial", "estimate": estimate})
    write_bundle("bad_estimate", SdGrader(), grader_meta, {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial", "estimate": {**estimate, "known_range": [30, 3]}})
    # Grades its estimate referred to one body size (estimate.size_reference), as the CT dose
    # grader; the second bundle's lumen.json says another spread than its network's.
    sized = {**estimate, "size_reference": {"diameter_mm": 40.0, "slope_ln_per_mm": 0.03, "class_spread": 0.05}}
    for name, spread in (("grader2d_sized", 0.05), ("grader2d_sized_wrong_spread", 0.2)):
        write_bundle(name, SizedGrader(estimate["class_edges"], spread), {**grader_meta, "name": name},
                     {"inferer": {"_target_": "SimpleInferer"}}, {"task": "classification", "plane": "axial", "estimate": sized})
    write_bundle("bad_size_reference", SizedGrader(estimate["class_edges"], 0.05), grader_meta,
                 {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial",
                  "estimate": {**sized, "size_reference": {"diameter_mm": 40.0, "class_spread": 0.05}}})
    write_bundle("grader2d_sized_evidence", SizedGrader(estimate["class_edges"], 0.05),
                 {**grader_meta, "name": "grader2d_sized_evidence"}, {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial", "estimate": sized,
                  "slice_evidence": {"range": [-50, 50], "smoothing_mm": 2, "neighbourhood_mm": 2, "min_area_mm2": 100}})
    for name, extras in (("size_reference_unknown_key", {"plane": "axial", "estimate": {
                              **sized, "size_reference": {**sized["size_reference"], "pixel_mm": 1.0}}}),
                         ("size_reference_coronal", {"plane": "coronal", "estimate": sized})):
        write_bundle(name, SizedGrader(estimate["class_edges"], 0.05), grader_meta,
                     {"inferer": {"_target_": "SimpleInferer"}}, {"task": "classification", **extras})
    write_bundle("unknown_estimate_key", SdGrader(), grader_meta, {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "plane": "axial", "estimate": {**estimate, "size_referral": {}}})
    # Fast whole-volume models for the GUI tests (a 512 x 512 x 32 CT in well under a second).
    write_bundle("gui_segment", Threshold3d(),
                 metadata("gui_segment", 2, channel_def={"0": "background", "1": "bone"}),
                 {"preprocessing": compose({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -100,
                                            "a_max": 700, "b_min": 0, "b_max": 1, "clip": True}),
                  "inferer": {"_target_": "SimpleInferer"}, "postprocessing": seg_post},
                 {"display_name": "Bone (test)", "label_colors": {"1": [40, 200, 90]}})
    enhance_inference = {"preprocessing": compose({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1000,
                                                   "a_max": 1000, "b_min": 0, "b_max": 1, "clip": False}),
                         "inferer": {"_target_": "SimpleInferer"}}
    write_bundle("gui_enhance", Identity(),
                 metadata("gui_enhance", 1, out_type="image", out_format="hounsfield", channel_def={"0": "image"}),
                 enhance_inference, {"task": "enhancement", "display_name": "Identity enhancement (test)"})
    # Its "model card": compared with the bilateral filter at four noise levels (the layout
    # models/training/eval_denoiser.py writes), the network better at the two lower ones,
    # measured at the sample CT's pixel size. The GUI test places the sample (about 41 HU as
    # estimated) at the 40 HU level. gui_enhance_1mm: the same card measured at 1 mm pixels,
    # which says nothing about the sample's 0.31 mm ones.
    card = {"classical_settings": {}, "quick": {}}
    for level, (est, true_sd, net, bil, setting) in {
            "5": (4.0, 5.0, 56.0, 55.0, [1.0, 2.0]), "10": (8.0, 10.0, 51.0, 50.0, [1.5, 2.0]),
            "40": (40.0, 50.0, 38.0, 39.5, [2.0, 1.5]), "100": (90.0, 110.0, 33.0, 34.0, [3.0, 1.5])}.items():
        card["classical_settings"][level] = {"bilateral": setting}
        card["quick"][level] = {"estimated_sd_hu": est, "measured_sd_hu": true_sd, "network": {"psnr": net},
                                "bilateral": {"psnr": bil}}
    for name, pixel in (("gui_enhance", 0.3125), ("gui_enhance_1mm", 1.0)):
        if name != "gui_enhance":
            write_bundle(name, Identity(),
                         metadata(name, 1, out_type="image", out_format="hounsfield", channel_def={"0": "image"}),
                         enhance_inference, {"task": "enhancement", "display_name": "Identity enhancement, 1 mm card (test)"})
        os.makedirs(os.path.join(OUT, name, "docs"), exist_ok=True)
        with open(os.path.join(OUT, name, "docs", "metrics.json"), "w") as f:
            json.dump({"pixel_mm": pixel, **card}, f, indent=1)
    write_bundle("classifier2d_any_size", Classifier2d(),
                 metadata("classifier2d_any_size", 2, out_type="probabilities", out_format="classification",
                          spatial_shape=[], channel_def={"0": "no", "1": "yes"}, in_shape=["*", "*"]),
                 {"inferer": {"_target_": "SimpleInferer"}}, {"task": "classification", "plane": "axial"})
    # Grades only slices with enough soft tissue (lumen.json slice_evidence), as the CT dose
    # grader does; the second one resamples its input, which slice_evidence cannot follow.
    evidence = {"range": [-20, 100], "smoothing_mm": 3, "neighbourhood_mm": 5, "min_area_mm2": 400}
    for name, pre in [("classifier2d_evidence", None),
                      ("classifier2d_evidence_resampled", {"_target_": "Spacingd", "keys": "image", "pixdim": [2.0, 2.0, 2.0]})]:
        inference = {"inferer": {"_target_": "SimpleInferer"}}
        if pre:
            inference["preprocessing"] = compose(pre)
        write_bundle(name, Classifier2d(),
                     metadata(name, 2, out_type="probabilities", out_format="classification",
                              spatial_shape=[], channel_def={"0": "no", "1": "yes"}, in_shape=["*", "*"]),
                     inference, {"task": "classification", "plane": "axial", "slice_evidence": evidence})
    write_bundle("spleen_like", Pointwise3d(), metadata("spleen_ct_segmentation", 2,
                                                         channel_def={"0": "background", "1": "spleen"}),
                 SPLEEN_INFERENCE, {"label_colors": {"1": [220, 60, 60]}, "series_filter": {"modality": "CT"}})

    # MONAI's answer: Spacingd with non-integer factors on every axis, then Invertd with
    # probabilities resampled back (nearest_interp false, then argmax), or labels resampled
    # back by nearest neighbour; compared with tests/models/monai_reference.py.
    monai_pre = compose({"_target_": "EnsureChannelFirstd", "keys": "image"},
                        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                        {"_target_": "Spacingd", "keys": "image", "pixdim": [1.37, 0.83, 2.21], "mode": "bilinear"},
                        {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -200, "a_max": 300,
                         "b_min": 0.0, "b_max": 1.0, "clip": True})
    smooth_meta = metadata("monai_probabilities", 3, channel_def={"0": "background", "1": "low", "2": "high"})
    write_bundle("monai_probabilities", Smooth3d(), smooth_meta,
                 {"preprocessing": monai_pre, "inferer": sw([48, 48, 24], batch=2, overlap=0.25),
                  "postprocessing": compose({"_target_": "Activationsd", "keys": "pred", "softmax": True},
                                            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing",
                                             "orig_keys": "image", "nearest_interp": False},
                                            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True})})
    write_bundle("monai_labels", Smooth3d(), dict(smooth_meta, name="monai_labels"),
                 {"preprocessing": monai_pre, "inferer": {"_target_": "SimpleInferer"},
                  "postprocessing": compose({"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                                            {"_target_": "KeepLargestConnectedComponentd", "keys": "pred",
                                             "applied_labels": [1, 2], "independent": False, "connectivity": 1,
                                             "num_components": 2},
                                            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing",
                                             "orig_keys": "image"})})
    # Sigmoid channels thresholded: every channel is kept (they may overlap).
    write_bundle("multilabel_threshold", Smooth3d(), metadata("multilabel_threshold", 3,
                                                             channel_def={"0": "mean", "1": "square", "2": "flat"}),
                 {"preprocessing": compose({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -200,
                                            "a_max": 300, "b_min": -1.0, "b_max": 1.0, "clip": True}),
                  "inferer": {"_target_": "SimpleInferer"},
                  "postprocessing": compose({"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
                                            {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5})})
    for axis in range(3):
        name = f"ras_index{axis}"
        write_bundle(name, IndexAlong(axis),
                     metadata(name, 1, out_type="image", out_format="index", channel_def={"0": "index"}),
                     {"preprocessing": compose({"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                                               {"_target_": "Spacingd", "keys": "image", "pixdim": [1.37, 0.83, 2.21]}),
                      "inferer": {"_target_": "SimpleInferer"},
                      "postprocessing": compose({"_target_": "Invertd", "keys": "pred", "nearest_interp": False})},
                     {"task": "enhancement"})

    # Bundles that must be refused with a clear message.
    write_bundle("wrong_input_channels", WrongInput(), metadata("wrong_input_channels", 2),
                 {"inferer": sw([8, 8, 8]), "postprocessing": seg_post})
    write_bundle("wrong_output_channels", Pointwise3d(out_channels=3), metadata("wrong_output_channels", 2),
                 {"inferer": sw([8, 8, 8]), "postprocessing": seg_post})
    bad = copy.deepcopy(SPLEEN_INFERENCE)
    bad["preprocessing"]["transforms"].insert(3, {"_target_": "RandFlipd", "keys": "image", "prob": 0.5})
    write_bundle("unknown_transform", Pointwise3d(), metadata("unknown_transform", 2), bad)
    bad = copy.deepcopy(SPLEEN_INFERENCE)
    bad["preprocessing"]["transforms"][3]["pixdim"] = "$np.array([1.5, 1.5, 2.0]) * 2"
    write_bundle("python_expression", Pointwise3d(), metadata("python_expression", 2), bad)
    bad = copy.deepcopy(SPLEEN_INFERENCE)
    bad["pixdim"] = [1.5, 1.5, 2.0]
    bad["roi"] = "$(64, 64, 32)"
    bad["preprocessing"]["transforms"][3]["pixdim"] = "@pixdim"
    bad["inferer"]["roi_size"] = "$@roi"
    write_bundle("references", Pointwise3d(), metadata("references", 2), bad)  # valid: plain references
    write_bundle("no_model", None, metadata("no_model", 2), SPLEEN_INFERENCE)
    d = write_bundle("bad_json", Pointwise3d(), metadata("bad_json", 2), SPLEEN_INFERENCE)
    with open(os.path.join(d, "configs", "metadata.json"), "w") as f:
        f.write('{"name": "bad_json", "network_data_format": ')
    d = write_bundle("no_data_format", Pointwise3d(), {"name": "no_data_format", "version": "1"}, SPLEEN_INFERENCE)
    write_bundle("bad_task", Pointwise3d(), metadata("bad_task", 2), SPLEEN_INFERENCE, {"task": "sorcery"})
    write_bundle("bad_slice_evidence", Classifier2d(), metadata("bad_slice_evidence", 2, out_type="probabilities",
                                                                out_format="classification", spatial_shape=[],
                                                                in_shape=["*", "*"]),
                 {"inferer": {"_target_": "SimpleInferer"}},
                 {"task": "classification", "slice_evidence": {"range": [100, -20], "smoothing_mm": 3, "neighbourhood_mm": 5, "min_area_mm2": 400}})

    # Options that change MONAI's result and that Lumen does not reproduce: refused by name.
    for key, value in (("align_corners", True), ("diagonal", True), ("padding_mode", "reflection"),
                       ("scale_extent", True), ("recompute_affine", True)):
        bad = copy.deepcopy(SPLEEN_INFERENCE)
        bad["preprocessing"]["transforms"][3][key] = value
        write_bundle("refused_spacing_" + key, Pointwise3d(), metadata("refused_spacing_" + key, 2), bad)
    for name, transform in (("refused_orientation_labels", {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS",
                                                             "labels": [["R", "L"], ["A", "P"], ["I", "S"]]}),
                            ("refused_asdiscrete_dim", {"_target_": "AsDiscreted", "keys": "pred", "argmax": True, "dim": 1}),
                            ("refused_asdiscrete_keepdim", {"_target_": "AsDiscreted", "keys": "pred", "argmax": True,
                                                            "keepdim": False}),
                            ("refused_threshold_values", {"_target_": "AsDiscreted", "keys": "pred",
                                                          "threshold_values": True, "logit_thresh": 0.5}),
                            ("refused_klcc_connectivity", {"_target_": "KeepLargestConnectedComponentd", "keys": "pred",
                                                           "connectivity": 4})):
        bad = copy.deepcopy(SPLEEN_INFERENCE)
        if transform["_target_"] == "Orientationd":
            bad["preprocessing"]["transforms"][2] = transform
        else:
            bad["postprocessing"]["transforms"].insert(1, transform)
        write_bundle(name, Pointwise3d(), metadata(name, 2), bad)
    # A malformed lumen.json (label colours as words): an error naming the key, never a crash.
    write_bundle("bad_label_colors", Pointwise3d(), metadata("bad_label_colors", 2), SPLEEN_INFERENCE,
                 {"label_colors": {"1": ["red", "green", "blue"]}})
    write_bundle("bad_plane", Pointwise2d(), metadata("bad_plane", 3, in_shape=[32, 32], spatial_shape=[32, 32]),
                 {"inferer": sw([20, 20])}, {"plane": "oblique"})
    bad = copy.deepcopy(SPLEEN_INFERENCE)
    bad["preprocessing"]["transforms"][3]["pixdim"] = ["1.5", "1.5", "2.0"]
    write_bundle("bad_pixdim_type", Pointwise3d(), metadata("bad_pixdim_type", 2), bad)

    # Reference sliding-window results for the C++ implementation to match.
    cases = [
        ("constant", [1, 1, 40, 36, 30], [16, 16, 16], 0.5, "constant", 3),
        ("gaussian", [1, 1, 40, 36, 30], [16, 20, 12], 0.25, "gaussian", 2),
        ("small", [1, 1, 10, 9, 8], [16, 16, 16], 0.5, "constant", 4),
        ("batch2", [2, 1, 20, 18, 22], [12, 12, 12], 0.6, "gaussian", 5),
    ]
    manifest = {}
    with torch.no_grad():
        for name, shape, roi, overlap, mode, bs in cases:
            x = torch.randn(shape)
            y = sliding_window_inference(x, roi, bs, conv, overlap=overlap, mode=mode)
            manifest[name] = {"input": save_tensor(name + "_input", x), "output": save_tensor(name + "_output", y),
                              "roi": roi, "overlap": overlap, "mode": mode, "batch": bs}
    with open(os.path.join(OUT, "reference", "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    open(os.path.join(OUT, "COMPLETE"), "w").write("ok\n")


if __name__ == "__main__":
    main()
