#!/usr/bin/python3
"""Assembles a trained model into its MONAI bundle under resources/models/<name>/.

    /usr/bin/python3 models/training/make_bundle.py <name> <training-output-dir>

Writes configs/metadata.json, configs/inference.json, configs/lumen.json and
models/model.ts (copied from the training output, which train_*.py writes), and keeps the
bundle's README.md (model card) and docs/ as they are. The configurations are written by
this script, not by hand, so that what the network was trained on (intensity scaling, voxel
size, orientation, window) and what the bundle tells the engine cannot drift apart.
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json"
DISCLAIMER = "Reference model for research and demonstration, not for diagnosis."

sys.path.insert(0, HERE)
import fit_size_reference  # noqa: E402  (the grader's size reference)
import train_dose_grader  # noqa: E402  (the grader's slice_evidence comes from its training rule)
import torch  # noqa: E402


def compose(*t):
    return {"_target_": "Compose", "transforms": [{"_target_": "LoadImaged", "keys": "image"},
                                                  {"_target_": "EnsureChannelFirstd", "keys": "image"}] + list(t)}


def metadata(name, version, description, task_desc, inputs, outputs, references, data_source):
    return {
        "schema": SCHEMA, "version": version, "name": name, "description": description,
        "authors": "Lumen contributors", "copyright": "Copyright (c) Lumen contributors",
        "license": "Apache-2.0 (weights and configuration); see README.md for the training data's licences",
        "monai_version": "1.0.0", "pytorch_version": "1.13.0", "numpy_version": "1.24.2",
        "optional_packages_version": {"nibabel": "4.0.2"},
        "task": task_desc, "data_source": data_source, "intended_use": DISCLAIMER,
        "references": references,
        "network_data_format": {"inputs": {"image": inputs}, "outputs": {"pred": outputs}},
    }


def ct_denoise():
    meta = metadata(
        "ct_denoise", "1.0.0", "Removes the noise a reduced tube current adds to head CT slices (2D residual U-Net).",
        "Low-dose CT denoising",
        {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1, "spatial_shape": [256, 256],
         "dtype": "float32", "value_range": [-1, 1], "is_patch_data": True, "channel_def": {"0": "image"}},
        {"type": "image", "format": "hounsfield", "num_channels": 1, "spatial_shape": [256, 256], "dtype": "float32",
         "value_range": [-1, 1], "is_patch_data": True, "channel_def": {"0": "image"}},
        ["Chen H. et al., Low-dose CT with a residual encoder-decoder convolutional neural network (RED-CNN), "
         "IEEE TMI 2017", "Yu L. et al., Development and validation of a practical lower-dose-simulation tool "
         "for optimizing CT scan protocols, JCAT 2012 (noise insertion)"],
        "Head CT slices from Debian packages (see README.md); low dose simulated by projection, Poisson and "
        "electronic noise and filtered back-projection")
    inference = {
        "image_key": "image",
        "preprocessing": compose({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1000, "a_max": 1000,
                                  "b_min": -1.0, "b_max": 1.0, "clip": False}),
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [256, 256], "sw_batch_size": 1, "overlap": 0.125,
                    "mode": "gaussian"},
    }
    extras = {"task": "enhancement", "display_name": "CT low-dose denoiser", "disclaimer": DISCLAIMER,
              "series_filter": {"modality": "CT"}, "plane": "axial"}
    return meta, inference, extras


DOSE_CLASSES = {"0": "full", "1": "1/2", "2": "1/4", "3": "1/8"}


def ct_dose_grade(trained):
    meta = metadata(
        "ct_dose_grade", "2.1.0",
        "Estimates the noise SD (HU) of a head CT series and grades it in dose-equivalent steps (full, 1/2, 1/4, "
        "1/8 of a standard head protocol), slice by slice, to suggest the denoiser. Output: the classes' "
        "log-probabilities, then ln(noise SD / HU).", "CT image quality (noise and dose level) grading",
        {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1, "spatial_shape": ["*", "*"],
         "dtype": "float32", "value_range": [0, 1], "is_patch_data": False, "channel_def": {"0": "image"}},
        {"type": "probabilities", "format": "classification", "num_channels": 5, "spatial_shape": [5],
         "dtype": "float32", "value_range": [0, 1], "is_patch_data": False,
         "channel_def": {**DOSE_CLASSES, "4": "ln noise SD (HU)"}},
        ["Ilse M. et al., Attention-based deep multiple instance learning, ICML 2018 (attention pooling)"],
        "Head CT slices from Debian packages with simulated noise (see README.md)")
    inference = {
        "image_key": "image",
        "preprocessing": compose({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -100, "a_max": 200,
                                  "b_min": 0.0, "b_max": 1.0, "clip": True}),
        "inferer": {"_target_": "SimpleInferer"},
        "postprocessing": {"_target_": "Compose",
                           "transforms": [{"_target_": "Activationsd", "keys": "pred", "softmax": True}]},
    }
    extras = {"task": "classification", "display_name": "CT dose level", "disclaimer": DISCLAIMER,
              "series_filter": {"modality": "CT"}, "plane": "axial",
              "suggest": {"when": ["1/4", "1/8"], "model": "ct_denoise",
                          "text": "Noisy series (a quarter of a standard dose or less): the denoiser may help"},
              "slice_evidence": train_dose_grader.SLICE_EVIDENCE,
              "estimate": {"name": "noise SD", "unit": "HU", "transform": "exp",
                           "known_range": list(train_dose_grader.KNOWN_RANGE),
                           "class_edges": [round(e, 4) for e in train_dose_grader.CLASS_EDGES],
                           # The grade is of the noise referred to one head size; the class
                           # spread is the network's own (the engine checks it against its output).
                           "size_reference": {"diameter_mm": train_dose_grader.REF_DIAMETER_MM,
                                              "slope_ln_per_mm": fit_size_reference.SLOPE_LN_PER_MM,
                                              "class_spread": round(float(torch.jit.load(
                                                  os.path.join(trained, "model.ts")).spread), 6)}}}
    return meta, inference, extras


def mr_brain_extract():
    meta = metadata(
        "mr_brain_extract", "1.0.0", "Brain extraction (skull stripping) of T1-weighted head MR, 3D U-Net trained "
        "on synthetic images (SynthStrip recipe).", "Brain extraction",
        {"type": "image", "format": "magnitude", "modality": "MR", "num_channels": 1, "spatial_shape": [48, 48, 48],
         "dtype": "float32", "value_range": [0, 1], "is_patch_data": True, "channel_def": {"0": "T1"}},
        {"type": "image", "format": "segmentation", "num_channels": 2, "spatial_shape": [48, 48, 48],
         "dtype": "float32", "value_range": [0, 1], "is_patch_data": True,
         "channel_def": {"0": "background", "1": "brain"}},
        ["Hoopes A. et al., SynthStrip: skull-stripping for any brain image, NeuroImage 2022",
         "Billot B. et al., SynthSeg, Medical Image Analysis 2023"],
        "Label maps from mricron-data's Colin27 T1, its brain mask and the AAL atlas (see README.md)")
    inference = {
        "image_key": "image",
        "preprocessing": compose({"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                                 {"_target_": "Spacingd", "keys": "image", "pixdim": [4.0, 4.0, 4.0],
                                  "mode": "bilinear"},
                                 {"_target_": "ScaleIntensityd", "keys": "image"}),
        # The window the network was trained on (48^3 at 4 mm: 192 mm, about a head): instance
        # norm makes the window's statistics part of what the network learned.
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [48, 48, 48], "sw_batch_size": 1, "overlap": 0.5,
                    "mode": "gaussian"},
        "postprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
             "nearest_interp": False, "to_tensor": True},
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            {"_target_": "KeepLargestConnectedComponentd", "keys": "pred", "applied_labels": [1]}]},
    }
    extras = {"task": "segmentation", "display_name": "Brain extraction (T1 MR)", "disclaimer": DISCLAIMER,
              "series_filter": {"modality": "MR"}, "label_colors": {"1": [80, 160, 255]}}
    return meta, inference, extras


# name -> f(training output dir) -> (metadata, inference, lumen.json)
SPECS = {"ct_denoise": lambda _: ct_denoise(), "ct_dose_grade": ct_dose_grade,
         "mr_brain_extract": lambda _: mr_brain_extract()}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SPECS:
        raise SystemExit(f"usage: make_bundle.py {{{'|'.join(SPECS)}}} <training-output-dir>")
    name, trained = sys.argv[1], sys.argv[2]
    src = os.path.join(trained, "model.ts")
    if not os.path.isfile(src):
        raise SystemExit(f"{src}: missing (run the training script first)")
    d = os.path.join(ROOT, "resources", "models", name)
    os.makedirs(os.path.join(d, "configs"), exist_ok=True)
    os.makedirs(os.path.join(d, "models"), exist_ok=True)
    meta, inference, extras = SPECS[name](trained)
    training = os.path.join(trained, "training.json")
    if os.path.isfile(training):
        meta["training"] = {k: v for k, v in json.load(open(training)).items() if k in ("args", "seconds")}
    for fname, obj in (("metadata.json", meta), ("inference.json", inference), ("lumen.json", extras)):
        with open(os.path.join(d, "configs", fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    shutil.copyfile(src, os.path.join(d, "models", "model.ts"))
    size = os.path.getsize(os.path.join(d, "models", "model.ts"))
    if size > 20 * 1024 * 1024:
        raise SystemExit(f"model.ts is {size / 2**20:.1f} MB: over the 20 MB a shipped bundle may take")
    print(f"wrote {d} (model.ts {size / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
