#!/usr/bin/python3
"""lumen-cli checked from outside, against independent readers.

Run by CTest with LUMEN_CLI, LUMEN_CORPUS, LUMEN_SAMPLE, LUMEN_FULL_CT and LUMEN_WORK set.
References: dcm2niix (another DICOM-to-NIfTI converter), pydicom with its GDCM and
Pillow handlers (another DICOM decoder), nibabel (another NIfTI reader). Volumes are
compared through each file's affine, voxel by voxel at the same physical position.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import nibabel as nib
import numpy as np
import pydicom

CLI = os.environ.get("LUMEN_CLI", "lumen-cli")
CORPUS = os.environ.get("LUMEN_CORPUS", "")
SAMPLE = os.environ.get("LUMEN_SAMPLE", "")
FULL_CT = os.environ.get("LUMEN_FULL_CT", "")
WORK = os.environ.get("LUMEN_WORK", tempfile.gettempdir())


def no_sanitizer_report(p):
    # Under the asan preset an error report must fail the test even where exit status 1 (a
    # refused input) is expected.
    if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        raise AssertionError(f"sanitizer report from lumen-cli {' '.join(p.args[1:])}:\n{p.stderr}")


def run(*args, check=True):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)
    no_sanitizer_report(p)
    if check and p.returncode != 0:
        raise AssertionError(f"lumen-cli {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def workdir(name):
    d = os.path.join(WORK, "cli", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def compare_through_affines(a_img, b_img):
    """Max |a - b| over voxels of a whose centre is a voxel centre of b (same position)."""
    a = a_img.get_fdata()  # scl_slope / scl_inter applied
    b = b_img.get_fdata()
    idx = np.indices(a.shape[:3]).reshape(3, -1)
    xyz = a_img.affine @ np.vstack([idx, np.ones(idx.shape[1])])
    ijk = np.linalg.inv(b_img.affine) @ xyz
    r = np.rint(ijk[:3]).astype(int)
    off_grid = np.abs(ijk[:3] - r).max()
    inside = np.all((r >= 0) & (r < np.array(b.shape[:3])[:, None]), axis=0)
    return np.abs(a[tuple(idx[:, inside])] - b[tuple(r[:, inside])]).max(), inside.mean(), off_grid


class CommandLine(unittest.TestCase):
    def test_help_and_version(self):
        self.assertIn("convert", run("--help").stdout)
        self.assertRegex(run("--version").stdout, r"lumen-cli \d+\.\d+\.\d+")

    def test_unknown_command_fails(self):
        p = run("frobnicate", check=False)
        self.assertNotEqual(p.returncode, 0)

    def test_info_json_describes_the_sample(self):
        out = json.loads(run("info", "--json", SAMPLE).stdout)
        self.assertEqual(len(out["volumes"]), 1)
        v = out["volumes"][0]
        self.assertEqual(v["modality"], "CT")
        self.assertEqual(v["geometry"]["size"], [512, 512, 32])
        self.assertAlmostEqual(v["geometry"]["spacing_mm"][2], 0.7, places=3)
        self.assertEqual(v["geometry"]["orientation"], "LPS")
        self.assertEqual(v["units"], "HU")
        self.assertEqual(out["skipped"], [])
        # Patient identity stays out of `info` (it ends up in tickets and logs).
        self.assertNotIn("CAMITK", json.dumps(out))


class BadInput(unittest.TestCase):
    def test_each_bad_file_fails_with_one_line_naming_it(self):
        bad = os.path.join(CORPUS, "bad")
        for name in sorted(os.listdir(bad)):
            if name == "good.dcm":
                continue
            path = os.path.join(bad, name)
            for cmd in (["info", path], ["convert", path, os.path.join(WORK, "bad.nii")]):
                p = run(*cmd, check=False)
                self.assertEqual(p.returncode, 1, f"{cmd}: {p.stderr}")
                err = [l for l in p.stderr.splitlines() if l.startswith("lumen-cli: error:")]
                self.assertEqual(len(err), 1, p.stderr)
                self.assertIn(path, err[0])

    def test_folder_with_bad_files_still_converts_the_good_one(self):
        out = os.path.join(workdir("badfolder"), "good.nii")
        p = run("convert", os.path.join(CORPUS, "bad"), out)
        self.assertTrue(os.path.exists(out))
        self.assertIn("deep-nesting.dcm", p.stderr)  # the others are named on stderr

    def test_missing_path_and_bad_output(self):
        self.assertEqual(run("info", "/no/such/dir", check=False).returncode, 1)
        p = run("convert", SAMPLE, os.path.join(WORK, "x.png"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("unknown output format", p.stderr)

    def test_existing_output_is_replaced_atomically(self):
        d = workdir("atomic")
        out = os.path.join(d, "ct.nii")
        run("convert", SAMPLE, out)
        run("convert", SAMPLE, out)
        self.assertEqual(sorted(os.listdir(d)), ["ct.nii"])  # no temporary left behind


class Dcm2niixCheck:
    def check(self, folder):
        d = workdir(f"dcm2niix-{type(self).__name__}-{os.path.basename(folder)}")  # suites run in parallel
        ours = os.path.join(d, "lumen.nii")
        run("convert", folder, ours)
        subprocess.run(["dcm2niix", "-z", "n", "-f", "ref", "-o", d, folder], check=True, capture_output=True)
        ref = os.path.join(d, "ref.nii")
        diff, overlap, off_grid = compare_through_affines(nib.load(ours), nib.load(ref))
        self.assertEqual(diff, 0.0)
        self.assertGreater(overlap, 0.999)
        self.assertLess(off_grid, 0.02)  # same voxel centres


class AgreesWithDcm2niix(Dcm2niixCheck, unittest.TestCase):
    def test_sample(self):
        self.check(SAMPLE)

    def test_oblique_and_sagittal(self):
        for case in ("oblique", "sagittal"):
            with self.subTest(case):
                self.check(os.path.join(CORPUS, "ramp", case))

    def test_gapped_series_on_the_equalised_grid(self):
        # dcm2niix writes the gap-filled series as *_Eq_1.nii (linear in z, like Lumen), one
        # step short of the last slice (an upstream off-by-one): compare where both have data.
        d = workdir("dcm2niix-missing")
        ours = os.path.join(d, "lumen.nii")
        run("convert", os.path.join(CORPUS, "ramp", "missing"), ours)
        subprocess.run(["dcm2niix", "-z", "n", "-f", "ref", "-o", d, os.path.join(CORPUS, "ramp", "missing")],
                       check=True, capture_output=True)
        diff, overlap, off_grid = compare_through_affines(nib.load(ours), nib.load(os.path.join(d, "ref_Eq_1.nii")))
        self.assertLessEqual(diff, 1.0)  # both interpolate the same two slices; rounding may differ
        self.assertGreater(overlap, 0.94)  # 19 of Lumen's 20 slices: dcm2niix drops the last one
        self.assertLess(off_grid, 0.02)

    def test_gantry_tilt(self):
        """Lumen's tilt-corrected volume against dcm2niix, through physical positions.

        dcm2niix writes the acquired stack with a sheared sform (exact geometry, no
        resampling) and a tilt-corrected *_Tilt_1.nii. Every voxel dcm2niix acquired must lie
        inside Lumen's grid; where Lumen has a value it must equal dcm2niix's acquired data
        interpolated at that position (both linear, Lumen rounds to integer HU: 0.5); where a
        position lies within the acquired stack, Lumen must have a value (nothing cut away).
        """
        from scipy.ndimage import map_coordinates
        folder = os.path.join(CORPUS, "ramp", "tilt")
        d = workdir("dcm2niix-tilt")
        ours = os.path.join(d, "lumen.nii")
        run("convert", folder, ours)
        subprocess.run(["dcm2niix", "-z", "n", "-f", "ref", "-o", d, folder], check=True, capture_output=True)
        lum, raw = nib.load(ours), nib.load(os.path.join(d, "ref.nii"))
        L, R = lum.get_fdata(), raw.get_fdata()
        # 1. Every acquired voxel centre is inside Lumen's grid.
        idx = np.indices(R.shape).reshape(3, -1)
        xyz = raw.affine @ np.vstack([idx, np.ones(idx.shape[1])])
        ijk = np.linalg.inv(lum.affine) @ xyz
        self.assertGreaterEqual(ijk[:3].min(), -1e-4)
        self.assertTrue(np.all(ijk[:3].max(axis=1) <= np.array(L.shape) - 1 + 1e-4), ijk[:3].max(axis=1))
        # 2. Lumen's voxels against dcm2niix's acquired data at the same positions.
        idx = np.indices(L.shape).reshape(3, -1)
        xyz = lum.affine @ np.vstack([idx, np.ones(idx.shape[1])])
        q = (np.linalg.inv(raw.affine) @ xyz)[:3]
        on_plane = np.abs(q[2] - np.rint(q[2])) < 1e-3
        self.assertTrue(on_plane.all())  # Lumen's slices are the acquired planes
        inside = np.all((q >= -1e-6) & (q <= np.array(R.shape)[:, None] - 1 + 1e-6), axis=0)
        ref = map_coordinates(R, q, order=1, mode="nearest")
        ours_v = L[tuple(idx)]
        defined = ours_v != -1024
        self.assertEqual(int(np.sum(inside & ~defined)), 0)  # nothing acquired is missing
        self.assertEqual(int(np.sum(defined & ~inside)), 0)  # nothing invented outside it
        self.assertLessEqual(np.abs(ours_v[defined] - ref[defined]).max(), 0.5 + 1e-6)
        # 3. dcm2niix's own tilt-corrected output. Its origin is off by the fraction of a row
        # its correction shifts (it moves the origin by ceil(s) rows, the data by s rows);
        # with that undone, both corrections agree within the rounding of each (2 units).
        tilt = nib.load(os.path.join(d, "ref_Tilt_1.nii"))
        T = tilt.get_fdata()
        A = tilt.affine.copy()
        s = abs(np.tan(np.radians(15.0))) * (R.shape[2] - 1) * raw.header.get_zooms()[2] / raw.header.get_zooms()[1]
        A[:3, 3] += (np.ceil(s) - s) * A[:3, 1]
        qt = (np.linalg.inv(A) @ xyz)[:3]
        jl = np.floor(qt[1]).astype(int)
        # Comparable: both of dcm2niix's neighbouring rows come from acquired rows.
        rows_acq = lambda j: (np.linalg.inv(raw.affine) @ (A @ np.vstack([qt[0], j, qt[2], np.ones(j.size)])))[1]
        ok = (defined & (qt[0] >= 0) & (qt[0] <= T.shape[0] - 1) & (jl >= 0) & (jl + 1 <= T.shape[1] - 1)
              & (rows_acq(jl) >= -1e-3) & (rows_acq(jl + 1.0) <= R.shape[1] - 1 + 1e-3))
        self.assertGreater(ok.sum(), 0.9 * defined.sum())
        ref_t = map_coordinates(T, qt, order=1, mode="nearest")
        self.assertLessEqual(np.abs(ours_v[ok] - ref_t[ok]).max(), 2.0)


class FullSeries(Dcm2niixCheck, unittest.TestCase):
    """The full 163-slice CT. CTest runs this suite only where the data exists and reports it
    as skipped elsewhere (tests/app/CMakeLists.txt), so a missing folder is a failure here."""

    def test_full_series(self):
        self.assertTrue(os.path.isdir(FULL_CT), FULL_CT)
        self.check(FULL_CT)


def pydicom_values(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if ds.get("SamplesPerPixel", 1) == 3:
        if ds.PhotometricInterpretation in ("YBR_FULL", "YBR_FULL_422"):
            arr = pydicom.pixel_data_handlers.util.convert_color_space(arr, ds.PhotometricInterpretation, "RGB")
        if arr.dtype != np.uint8:
            arr = (arr >> (ds.BitsStored - 8)).astype(np.uint8)
        return arr
    slope = float(ds.get("RescaleSlope", ds.get("DoseGridScaling", 1)) or 1)
    return arr.astype(np.float64) * slope + float(ds.get("RescaleIntercept", 0) or 0)


class AgreesWithPydicom(unittest.TestCase):
    """Decoding of every transfer syntax and photometric interpretation, against pydicom."""

    def convert(self, path):
        out = os.path.join(workdir("pyd-" + os.path.basename(path)), "out.nrrd")
        run("convert", path, out)
        return out

    def test_transfer_syntaxes(self):
        t = os.path.join(CORPUS, "transfer")
        for name in sorted(os.listdir(t)):
            if not name.endswith(".dcm"):
                continue
            path = os.path.join(t, name)
            ours = self.our_array(path)
            ref = pydicom_values(path)
            # JPEG lossy decoders may round differently by one unit.
            tol = 1.0 if ("extended" in name or "near" in name or "lossy" in name) else 0.0
            self.assertLessEqual(np.abs(ours[..., 0].T - ref).max(), tol, name)

    def our_array(self, path):
        out = os.path.join(workdir("pyd-" + os.path.basename(path)), "out.nii")
        run("convert", path, out)
        img = nib.load(out)
        return np.asarray(img.dataobj)

    def test_pydicom_corpus(self):
        p = os.path.join(CORPUS, "pydicom")
        for name in ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
                     "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "rtdose.dcm", "JPEG2000.dcm",
                     "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", "SC_ybr_full_422_uncompressed.dcm",
                     "ExplVR_BigEnd.dcm", "image_dfl.dcm"]:
            path = os.path.join(p, name)
            self.assertTrue(os.path.exists(path), path)
            ref = pydicom_values(path)
            ours = self.our_array(path)
            if ours.dtype.names:  # RGB in NIfTI: a structured type
                ours = np.stack([ours[c] for c in ("R", "G", "B")], axis=-1)
            ours = np.squeeze(ours)
            if ref.ndim == 3 and ours.ndim == 3 and ref.shape[-1] != 3:  # multi-frame: frames, rows, cols
                ref = np.transpose(ref, (2, 1, 0))
            elif ref.ndim == 3:  # rows, cols, rgb
                ref = np.transpose(ref, (1, 0, 2))
            else:
                ref = ref.T
            self.assertEqual(ours.shape, ref.shape, name)
            tol = 1e-3 * max(1.0, np.abs(ref).max()) if name.startswith("rtdose") else 0.0
            self.assertLessEqual(np.abs(ours.astype(np.float64) - ref).max(), tol, name)


class VolumeSelection(unittest.TestCase):
    def test_largest_volume_by_default_others_named(self):
        d = workdir("select")
        p = run("convert", os.path.join(CORPUS, "ramp", "localizer"), os.path.join(d, "a.nii"))
        self.assertIn("2 volumes found", p.stderr)
        self.assertIn("volume 2", p.stderr)
        self.assertEqual(nib.load(os.path.join(d, "a.nii")).shape[2], 10)

    def test_volume_and_series_flags(self):
        d = workdir("select2")
        echoes = os.path.join(CORPUS, "ramp", "echoes")
        info = json.loads(run("info", "--json", echoes).stdout)
        self.assertEqual([v["split"] for v in info["volumes"]], ["echo 1", "echo 2"])
        run("convert", "--volume", "2", echoes, os.path.join(d, "e2.nii"))
        e2 = np.asarray(nib.load(os.path.join(d, "e2.nii")).dataobj)
        run("convert", "--volume", "1", echoes, os.path.join(d, "e1.nii"))
        e1 = np.asarray(nib.load(os.path.join(d, "e1.nii")).dataobj)
        self.assertEqual(int(np.median(e2 - e1)), 100)
        p = run("convert", "--series", "1.2.3.999", echoes, os.path.join(d, "x.nii"), check=False)
        self.assertEqual(p.returncode, 1)
        p = run("convert", "--volume", "7", echoes, os.path.join(d, "x.nii"), check=False)
        self.assertIn("out of range", p.stderr)


class Database(unittest.TestCase):
    def test_import_and_list(self):
        d = workdir("db")
        env_args = ["--data-dir", d]
        r = json.loads(run("import", "--json", *env_args, SAMPLE, os.path.join(CORPUS, "bad")).stdout)
        # bad/good.dcm is a copy of a sample slice: one instance, imported once.
        self.assertEqual(r["added"] + r["unchanged"], 32 + 1)
        self.assertEqual(r["added"], 32)
        self.assertGreaterEqual(len(r["skipped"]), 17)
        r2 = json.loads(run("import", "--json", *env_args, SAMPLE).stdout)
        self.assertEqual(r2["added"], 0)
        self.assertEqual(r2["unchanged"], 32)
        listing = json.loads(run("list", "--json", *env_args).stdout)
        studies = [s for p in listing["patients"] for s in p["studies"]]
        self.assertEqual(sum(s["instance_count"] for s in studies), 32)
        text = run("list", *env_args).stdout
        self.assertIn("SINUS", text)
        self.assertTrue(os.path.exists(os.path.join(d, "lumen.db")))

    def test_copy_into_managed_store(self):
        d = workdir("dbcopy")
        r = json.loads(run("import", "--json", "--copy", "--data-dir", d, SAMPLE).stdout)
        self.assertEqual(r["added"], 32)
        stored = [f for _, _, fs in os.walk(os.path.join(d, "store")) for f in fs]
        self.assertEqual(len(stored), 32)


MODELS = os.environ.get("LUMEN_TEST_MODELS", "")


TRUST_DIR = os.path.join(WORK, "cli", "config")  # the trusted-models list of these tests


def infer(*args, check=True, trust=True):
    """lumen-cli infer with the test bundles; `trust`: --trust (they are the tests' own)."""
    # The default study database of the tests is their own (infer stores a SEG of a series in it).
    env = dict(os.environ, LUMEN_MODEL_PATH=MODELS, LUMEN_CONFIG_DIR=TRUST_DIR,
               LUMEN_DATA_DIR=os.environ.get("LUMEN_DATA_DIR", os.path.join(WORK, "cli", "default-data")))
    p = subprocess.run([CLI, "infer", *(["--trust"] if trust else []), *args], capture_output=True, text=True,
                       timeout=600, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"lumen-cli infer {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


class Inference(unittest.TestCase):
    """`lumen-cli infer` and `lumen-cli models` with the small test bundles."""

    def test_models_lists_bundles_with_hashes(self):
        env = dict(os.environ, LUMEN_MODEL_PATH=MODELS)
        out = json.loads(subprocess.run([CLI, "models", "--json"], capture_output=True, text=True, env=env,
                                        check=True).stdout)
        by_name = {m.get("name"): m for m in out["models"] if "name" in m}
        self.assertEqual(by_name["spleen_ct_segmentation"]["task"], "segmentation")
        self.assertEqual(by_name["spleen_ct_segmentation"]["labels"]["1"], "spleen")
        self.assertEqual(len(by_name["classifier3d"]["sha256"]), 64)
        self.assertTrue(any("RandFlipd" in m.get("error", "") for m in out["models"]))

    def test_output_is_on_the_input_grid(self):
        d = workdir("infer-grid")
        # An oblique, anisotropic, flipped input written by nibabel.
        c, s = np.cos(0.4), np.sin(0.4)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)],
                                                                   [0, np.sin(0.3), np.cos(0.3)]])
        a = np.eye(4)
        a[:3, :3] = rot @ np.diag([-0.9, 1.1, 2.4])  # oblique, anisotropic, first axis flipped
        a[:3, 3] = [30.0, -12.0, 50.0]
        rng = np.random.default_rng(1)
        data = (rng.normal(size=(34, 27, 15)) * 100).astype(np.int16)
        nib.save(nib.Nifti1Image(data, a), os.path.join(d, "in.nii.gz"))
        infer("-m", "identity3d", os.path.join(d, "in.nii.gz"), "-o", os.path.join(d, "out.nii.gz"))
        out = nib.load(os.path.join(d, "out.nii.gz"))
        self.assertEqual(out.shape, data.shape)
        np.testing.assert_allclose(out.affine, nib.load(os.path.join(d, "in.nii.gz")).affine, atol=1e-4)
        self.assertEqual(out.get_data_dtype(), np.int16)  # enhancement keeps the input's type and units

        infer("-m", "spleen_ct_segmentation", os.path.join(d, "in.nii.gz"), "-o", os.path.join(d, "seg.nrrd"),
              "--roi", "32,32,16", "--overlap", "0.25", "--sw-batch", "2", "--blend", "gaussian")
        self.assertTrue(os.path.exists(os.path.join(d, "seg.nrrd")))

    def test_dicom_input_and_json_report(self):
        d = workdir("infer-dicom")
        run("convert", SAMPLE, os.path.join(d, "ct.nii.gz"))
        p = infer("-m", "spleen_ct_segmentation", SAMPLE, "-o", os.path.join(d, "seg.nii.gz"))
        self.assertIn("device: auto:", p.stderr)  # the device decision and its reason
        seg, ct = nib.load(os.path.join(d, "seg.nii.gz")), nib.load(os.path.join(d, "ct.nii.gz"))
        self.assertEqual(seg.shape, ct.shape)
        np.testing.assert_allclose(seg.affine, ct.affine, atol=1e-4)
        # The labels themselves, not only the grid: a DICOM series through Lumen against MONAI's
        # answer on dcm2niix's NIfTI of the same series, at the same physical positions.
        ours = os.path.join(d, "labels.nii.gz")
        infer("-m", "monai_probabilities", SAMPLE, "-o", ours)
        subprocess.run(["dcm2niix", "-z", "y", "-f", "ref", "-o", d, SAMPLE], check=True, capture_output=True)
        subprocess.run([PYTHON, MONAI_REFERENCE, os.path.join(MODELS, "monai_probabilities"), os.path.join(d, "ref.nii.gz"),
                        os.path.join(d, "monai.nii.gz"), "--grid-json", os.path.join(d, "grid.json")], check=True,
                       capture_output=True)
        labels = nib.load(ours)
        agree, overlap = agreement_through_affines(labels, nib.load(os.path.join(d, "monai.nii.gz")))
        self.assertGreater(overlap, 0.999)
        self.assertGreaterEqual(agree, 0.999)
        self.assertEqual(len(np.unique(np.asarray(labels.dataobj))), 3)  # every label present
        infer("-m", "spleen_ct_segmentation", SAMPLE, "-o", os.path.join(d, "seg.json"))
        report = json.load(open(os.path.join(d, "seg.json")))
        self.assertEqual(report["model"], "spleen_ct_segmentation")
        self.assertEqual(len(report["sha256"]), 64)
        self.assertEqual(report["input"]["size"], [512, 512, 32])

    def test_classification(self):
        d = workdir("infer-cls")
        p = infer("-m", "classifier3d", SAMPLE, "-o", os.path.join(d, "c.json"), "--saliency", os.path.join(d, "s.nii.gz"))
        report = json.load(open(os.path.join(d, "c.json")))
        self.assertAlmostEqual(sum(report["probabilities"].values()), 1.0, places=5)
        self.assertIn(report["predicted"], ["low", "medium", "high"])
        self.assertIn(report["predicted"], p.stdout)
        self.assertEqual(nib.load(os.path.join(d, "s.nii.gz")).shape, (512, 512, 32))
        q = infer("-m", "classifier3d", SAMPLE, "-o", os.path.join(d, "c.nii.gz"), check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn(".json", q.stderr)

    def test_classification_with_an_estimate(self):
        # grader2d: its last column is ln(100 x the slice's SD), reported as "noise SD";
        # outside 3-30 HU it gives no class.
        d = workdir("infer-estimate")
        ramp = np.indices((16, 12))[0] + np.indices((16, 12))[1]
        board = np.where(ramp % 2 == 1, 1.0, -1.0).astype(np.float32)
        for name, amplitudes, predicted in [("in", [0.05, 0.1, 0.2, 0.1], "10"), ("out", [0.5] * 4, None)]:
            vol = np.stack([board * a for a in amplitudes], -1)
            nib.save(nib.Nifti1Image(vol, np.diag([-1.0, -1.0, 2.0, 1.0])), os.path.join(d, name + ".nii.gz"))
            p = infer("-m", "grader2d", os.path.join(d, name + ".nii.gz"), "-o", os.path.join(d, name + ".json"))
            r = json.load(open(os.path.join(d, name + ".json")))
            self.assertEqual(r["predicted"], predicted)
            self.assertEqual(r["estimate"]["name"], "noise SD")
            self.assertEqual(r["estimate"]["known_range"], [3, 30])
            if predicted:
                self.assertAlmostEqual(r["estimate"]["value"], 10.0, places=3)
                np.testing.assert_allclose(r["estimate"]["slices"], [5, 10, 20, 10], rtol=1e-4)
                self.assertEqual(sorted(r["probabilities"]), ["10", "20", "5"])
                self.assertEqual(r["detail"], "noise SD 10 HU")
                self.assertIn(": 10 (p = ", p.stdout)
                self.assertNotIn("not_graded", r)
            else:
                self.assertAlmostEqual(r["estimate"]["value"], 50.0, places=2)
                self.assertIn("outside the range the model knows", r["not_graded"])
                self.assertIn("not graded: outside the range the model knows (3-30 HU): noise SD about 50 HU", p.stdout)

    def test_segmentation_uncertainty_map_and_per_label_means(self):
        d = workdir("infer-uncertainty")
        labels_path, map_path, report_path = (os.path.join(d, n) for n in ("l.nii.gz", "u.nii.gz", "r.json"))
        # The labels and the map as images, and the report beside them (it used to lose the
        # label counts when the labels went to an image).
        infer("-m", "monai_probabilities", SAMPLE, "-o", labels_path, "--uncertainty", map_path, "--report", report_path)
        alone = os.path.join(d, "alone.json")
        infer("-m", "monai_probabilities", SAMPLE, "-o", alone)
        self.assertEqual(json.load(open(report_path))["labels"], json.load(open(alone))["labels"])
        labels, umap = nib.load(labels_path), nib.load(map_path)
        self.assertEqual(umap.shape, labels.shape)  # the input's grid
        np.testing.assert_allclose(umap.affine, labels.affine, atol=1e-4)
        u, lab = np.asarray(umap.dataobj, dtype=np.float64), np.asarray(labels.dataobj)
        self.assertGreaterEqual(u.min(), 0.0)
        self.assertLessEqual(u.max(), 1.0)
        self.assertGreater(u.max(), 0.05)  # not a map of zeros
        report = json.load(open(report_path))
        means = {v["label"]: v["mean_uncertainty"] for v in report["labels"].values()}
        self.assertTrue(means)
        for label, mean in means.items():
            self.assertAlmostEqual(mean, float(u[lab == label].mean()), places=4, msg=f"label {label}")
        # Asked of a model that has no such map: refused, never ignored.
        p = infer("-m", "classifier3d", SAMPLE, "-o", os.path.join(d, "c.json"), "--uncertainty", map_path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--uncertainty", p.stderr)
        p = infer("-m", "monai_probabilities", SAMPLE, "-o", labels_path, "--saliency", map_path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--saliency", p.stderr)

    def test_untrusted_models_do_not_run_until_trusted(self):
        d = workdir("infer-trust")
        shutil.rmtree(TRUST_DIR, ignore_errors=True)
        env = dict(os.environ, LUMEN_MODEL_PATH=MODELS, LUMEN_CONFIG_DIR=TRUST_DIR)
        out = os.path.join(d, "seg.nii.gz")
        p = infer("-m", "pointwise3d", SAMPLE, "-o", out, check=False, trust=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not trusted", p.stderr)
        self.assertFalse(os.path.exists(out))
        # Trusted once, by name: runs from then on; the list is the user's alone.
        t = subprocess.run([CLI, "models", "--trust", "pointwise3d"], capture_output=True, text=True, env=env)
        self.assertEqual(t.returncode, 0, t.stderr)
        listed = os.path.join(TRUST_DIR, "trusted-models.json")
        self.assertEqual(os.stat(listed).st_mode & 0o777, 0o600)
        infer("-m", "pointwise3d", SAMPLE, "-o", out, trust=False)
        models = json.loads(subprocess.run([CLI, "models", "--json"], capture_output=True, text=True, env=env).stdout)
        states = {m.get("name"): m.get("trust") for m in models["models"]}
        self.assertEqual(states["pointwise3d"], "trusted")
        self.assertEqual(states["ct_denoise"], "shipped")  # pinned by hash, no question asked
        self.assertEqual(states["conv3d"], "not trusted")
        # A changed model.ts is another model: trusted again or not run.
        copy = os.path.join(d, "bundles", "pointwise3d")
        shutil.copytree(os.path.join(MODELS, "pointwise3d"), copy)
        env2 = dict(env, LUMEN_MODEL_PATH=os.path.join(d, "bundles"))
        ok = subprocess.run([CLI, "infer", "-m", copy, SAMPLE, "-o", out], capture_output=True, text=True, env=env2)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        shutil.copy(os.path.join(MODELS, "spleen_like", "models", "model.ts"), os.path.join(copy, "models", "model.ts"))
        changed = subprocess.run([CLI, "infer", "-m", copy, SAMPLE, "-o", out], capture_output=True, text=True, env=env2)
        self.assertEqual(changed.returncode, 1)
        self.assertIn("not trusted", changed.stderr)

    def test_threshold_keeps_every_channel(self):
        d = workdir("infer-channels")
        out = os.path.join(d, "masks.nii.gz")
        infer("-m", "multilabel_threshold", SAMPLE, "-o", out, "--report", os.path.join(d, "r.json"))
        img = nib.load(out)
        self.assertEqual(img.shape, (512, 512, 32, 3))
        report = json.load(open(os.path.join(d, "r.json")))
        self.assertEqual(report["channels"], 3)
        data = np.asarray(img.dataobj)
        for name, c in (("mean", 0), ("square", 1), ("flat", 2)):
            self.assertEqual(report["labels"][name]["voxels"], int((data[..., c] > 0).sum()))

    def test_global_options_before_the_command(self):
        d = workdir("infer-global")
        env = dict(os.environ, LUMEN_MODEL_PATH=MODELS)
        p = subprocess.run([CLI, "--threads", "2", "-v", "infer", "--trust", "-m", "identity3d", SAMPLE, "-o",
                            os.path.join(d, "out.nii.gz")], capture_output=True, text=True, timeout=600, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 CPU thread(s)", p.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "out.nii.gz")))

    def test_errors_are_one_line(self):
        d = workdir("infer-errors")
        for args, words in [(["-m", "unknown_transform"], ["RandFlipd"]),
                            (["-m", "no-such-model"], ["no-such-model"]),
                            (["-m", "spleen_ct_segmentation", "--device", "cuda"], ["CUDA"]),
                            (["-m", "wrong_input_channels"], ["rejected its input"]),
                            (["-m", "spleen_ct_segmentation", "--precision", "fp8"], ["precision"])]:
            p = infer(*args, SAMPLE, "-o", os.path.join(d, "x.nii.gz"), check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            err = [l for l in p.stderr.splitlines() if l.startswith("lumen-cli: error:")]
            self.assertEqual(len(err), 1, p.stderr)
            for w in words:
                self.assertIn(w, err[0])


PYTHON = "/usr/bin/python3"
MONAI_REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "monai_reference.py")


def agreement_through_affines(a_img, b_img):
    """Fraction of a's voxels with b's label at the same position, and the share compared."""
    a = np.asarray(a_img.dataobj)
    b = np.rint(np.asarray(b_img.dataobj))
    idx = np.indices(a.shape[:3]).reshape(3, -1)
    xyz = a_img.affine @ np.vstack([idx, np.ones(idx.shape[1])])
    r = np.rint(np.linalg.inv(b_img.affine) @ xyz)[:3].astype(int)
    inside = np.all((r >= 0) & (r < np.array(b.shape[:3])[:, None]), axis=0)
    return float(np.mean(a[tuple(idx[:, inside])] == b[tuple(r[:, inside])])), float(inside.mean())


class AgreesWithMonai(unittest.TestCase):
    """lumen-cli infer against tests/models/monai_reference.py, written from MONAI's documented
    Spacing / SpatialResample / Invertd: the model grid (shape and affine) and the labels."""

    @classmethod
    def setUpClass(cls):
        cls.dir = workdir("monai")
        cls.ct = os.path.join(cls.dir, "ct.nii.gz")
        run("convert", SAMPLE, cls.ct)

    def check(self, bundle):
        d = self.dir
        ours, report = os.path.join(d, bundle + ".nii.gz"), os.path.join(d, bundle + ".json")
        infer("-m", os.path.join(MODELS, bundle), self.ct, "-o", ours, "--report", report)
        ref, grid = os.path.join(d, bundle + "-monai.nii.gz"), os.path.join(d, bundle + "-grid.json")
        p = subprocess.run([PYTHON, MONAI_REFERENCE, os.path.join(MODELS, bundle), self.ct, ref, "--grid-json", grid],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(report) as f, open(grid) as h:
            g, rg = json.load(f)["model_grid"], json.load(h)
        self.assertEqual(g["size"], rg["shape"])
        np.testing.assert_allclose(np.array(g["affine_ras"]).reshape(4, 4), np.array(rg["affine"]), atol=1e-6)
        a, b = np.asarray(nib.load(ours).dataobj), np.rint(np.asarray(nib.load(ref).dataobj))
        self.assertEqual(a.shape, b.shape)
        self.assertGreater(len(np.unique(a)), 2)
        return float(np.mean(a == b))

    def test_probabilities_resampled_back_then_argmax(self):
        self.assertGreaterEqual(self.check("monai_probabilities"), 0.999)

    def test_labels_kept_largest_then_resampled_back_nearest(self):
        # Nearest neighbour at exactly half-way positions: Lumen rounds to even, MONAI as its
        # affine arithmetic's rounding falls; on this grid two planes of such ties differ.
        self.assertGreaterEqual(self.check("monai_labels"), 0.999)


if __name__ == "__main__":
    unittest.main()


# ---- De-identification (PS3.15 Table E.1-1) ----------------------------------------------

def profile_tags():
    """(group, element) of every attribute of imaging/src/ConfidentialityProfile.inc that has
    no wildcard: the attributes PS3.15 Table E.1-1 names."""
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    inc = open(os.path.join(here, "..", "..", "imaging", "src", "ConfidentialityProfile.inc")).read()
    tags = []
    for g, gm, e, em, basic in re.findall(
            r'\{0x([0-9A-F]{4}), 0x([0-9A-F]{4}), 0x([0-9A-F]{4}), 0x([0-9A-F]{4}), "[^"]*", "([^"]*)"', inc):
        if gm == "FFFF" and em == "FFFF":
            tags.append((int(g, 16), int(e, 16), basic))
    return tags


MARK = "MRK"
MARK_DATE = "19771107"
MARK_UID = "1.2.826.0.1.3680043.9.7777."


def marker_value(vr, n):
    """A value of the VR that carries a marker a reader can find again."""
    from pydicom.valuerep import PersonName  # noqa: F401
    if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
        return f"{MARK}{n:05d}"
    if vr == "PN":
        return f"{MARK}^P{n:05d}"
    if vr == "DA":
        return MARK_DATE
    if vr == "DT":
        return MARK_DATE + "071707"
    if vr == "TM":
        return "071707"
    if vr == "UI":
        return f"{MARK_UID}{n}"
    if vr == "AS":
        return "077Y"
    if vr in ("DS", "IS"):
        return "7707"
    if vr == "UR":
        return f"http://{MARK.lower()}.example/{n}"
    return None


class Anonymize(unittest.TestCase):
    """lumen-cli anonymize against the standard's promise: nothing Table E.1-1 names
    survives (checked with markers in every attribute, in sequences, private and overlay
    groups), pixel data are unchanged, UIDs are replaced consistently so references still
    resolve, and what is written is valid DICOM."""

    @classmethod
    def setUpClass(cls):
        cls.d = workdir("anonymize")
        cls.key = os.path.join(cls.d, "project.key")
        run("anonymize", "--make-key", cls.key)
        cls.sample = sorted(os.path.join(SAMPLE, f) for f in os.listdir(SAMPLE))

    def marked(self, name, source_index=0, extra=None):
        """A copy of a sample file with a marker in every attribute Table E.1-1 names."""
        from pydicom.datadict import dictionary_VR
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence
        ds = pydicom.dcmread(self.sample[source_index])
        n = 0
        for g, e, basic in profile_tags():
            if g == 0x0002 or g == 0x0000 or (g, e) in ((0x0008, 0x0018), (0x0020, 0x000D), (0x0020, 0x000E)):
                continue  # file meta, command group; the identifying UIDs get their own markers below
            try:
                vr = dictionary_VR((g << 16) | e)
            except KeyError:
                continue
            n += 1
            if vr == "SQ":
                item = Dataset()
                item.PatientName = f"{MARK}^SEQ{n}"
                item.ReferencedSOPInstanceUID = f"{MARK_UID}9{n}"
                if "D" in basic:  # a dummy sequence: even text the table does not name goes
                    item.TextValue = f"{MARK}TEXT{n}"
                ds.add_new((g, e), "SQ", Sequence([item]))
                continue
            v = marker_value(vr.split(" or ")[0], n)
            if v is not None:
                ds.add_new((g, e), vr.split(" or ")[0], v)
        ds.SOPInstanceUID = f"{MARK_UID}1{source_index}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID = f"{MARK_UID}2"
        ds.SeriesInstanceUID = f"{MARK_UID}3"
        ds.PatientName = f"{MARK}^PATIENT"
        ds.PatientID = f"{MARK}ID"
        ds.StudyDescription = f"Head for {MARK}^PATIENT"
        ds.add_new((0x0011, 0x0010), "LO", f"{MARK}CREATOR")
        ds.add_new((0x0011, 0x1001), "LO", f"{MARK}PRIVATE")
        ds.add_new((0x6000, 0x4000), "LT", f"{MARK}OVERLAY")
        ds.file_meta.SourceApplicationEntityTitle = f"{MARK}AE"
        ds.preamble = f"{MARK}PREAMBLE".encode().ljust(128, b"\0")
        ds.ReferencedStudySequence = pydicom.sequence.Sequence([pydicom.dataset.Dataset()])
        ds.ReferencedStudySequence[0].add_new((0x0019, 0x0010), "LO", f"{MARK}NESTEDCREATOR")
        ds.ReferencedStudySequence[0].add_new((0x0019, 0x1001), "LO", f"{MARK}NESTEDPRIVATE")
        ds.ConcatenationUID = f"{MARK_UID}5"  # a UID the table does not name: handled by its VR
        if extra:
            extra(ds)
        path = os.path.join(self.d, "in", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ds.save_as(path, write_like_original=False)
        return path

    def outputs(self, out):
        files = []
        for root, _, names in os.walk(out):
            files += [os.path.join(root, f) for f in names if f.endswith(".dcm")]
        return sorted(files)

    def walk(self, ds):
        for el in ds.iterall():
            yield el

    def test_nothing_the_table_names_survives(self):
        a = self.marked("a.dcm", 0)
        b = self.marked("b.dcm", 1, extra=lambda ds: setattr(ds, "ReferencedImageSequence", pydicom.sequence.Sequence(
            [pydicom.dataset.Dataset()])) or ds.ReferencedImageSequence[0].__setattr__("ReferencedSOPInstanceUID", f"{MARK_UID}10"))
        out = os.path.join(self.d, "out")
        shutil.rmtree(out, ignore_errors=True)
        run("anonymize", a, b, out, "--key", self.key)
        files = self.outputs(out)
        self.assertEqual(len(files), 2)
        for f in files:
            raw = open(f, "rb").read()
            self.assertNotIn(MARK.encode(), raw, f"a marker survived in {f}")
            self.assertNotIn(MARK_DATE.encode(), raw)
            self.assertNotIn(MARK_UID.encode(), raw)
            ds = pydicom.dcmread(f)
            self.assertEqual(ds.PatientIdentityRemoved, "YES")
            self.assertEqual(ds.DeidentificationMethodCodeSequence[0].CodeValue, "113100")
            self.assertFalse(any(el.tag.is_private for el in ds.iterall()))
            self.assertNotIn((0x6000, 0x4000), ds)
            self.assertTrue(ds.SOPInstanceUID.startswith("2.25."))
            self.assertEqual(ds.file_meta.MediaStorageSOPInstanceUID, ds.SOPInstanceUID)
            self.assertEqual(ds.LongitudinalTemporalInformationModified, "REMOVED")
            self.assertEqual(ds.SOPClassUID, "1.2.840.10008.5.1.4.1.1.2")  # the standard's UIDs stay
            # The markers that are not text: times, ages, numbers of the named attributes.
            for el in ds.iterall():
                if el.VR in ("TM", "AS", "DS", "IS") and el.value not in (None, ""):
                    self.assertNotIn(str(el.value), ("071707", "077Y", "7707"), f"{el.tag} kept its marker")
        # Pixel data unchanged; the reference from b to a resolves to a's new UID.
        by_source = {}
        pixels = {"a": pydicom.dcmread(a).PixelData, "b": pydicom.dcmread(b).PixelData}
        self.assertNotEqual(pixels["a"], pixels["b"])
        for f in files:
            ds = pydicom.dcmread(f)
            for name, px in pixels.items():
                if ds.PixelData == px:
                    by_source[name] = ds
        self.assertEqual(sorted(by_source), ["a", "b"])  # each output holds its source's pixels, unchanged
        refs = [it.ReferencedSOPInstanceUID for it in by_source["b"].ReferencedImageSequence if "ReferencedSOPInstanceUID" in it]
        self.assertIn(by_source["a"].SOPInstanceUID, refs)
        self.assertEqual(by_source["a"].StudyInstanceUID, by_source["b"].StudyInstanceUID)
        self.assertEqual(by_source["a"].PatientID, by_source["b"].PatientID)  # one pseudonym per patient
        # The log holds no patient data and no input path.
        log = open(os.path.join(out, "deidentification-log.tsv")).read()
        self.assertNotIn(MARK, log)
        self.assertNotIn(self.d, log)

    def test_uids_are_consistent_across_runs_and_keyed(self):
        f = self.sample[3]
        outs = []
        for i, key in enumerate([self.key, self.key, os.path.join(self.d, "other.key")]):
            if i == 2 and not os.path.exists(key):
                run("anonymize", "--make-key", key)
            out = os.path.join(self.d, f"run{i}")
            shutil.rmtree(out, ignore_errors=True)
            run("anonymize", f, out, "--key", key)
            outs.append(pydicom.dcmread(self.outputs(out)[0]))
        self.assertEqual(outs[0].SOPInstanceUID, outs[1].SOPInstanceUID)
        self.assertEqual(outs[0].PatientID, outs[1].PatientID)
        self.assertNotEqual(outs[0].SOPInstanceUID, outs[2].SOPInstanceUID)
        self.assertNotEqual(outs[0].PatientID, outs[2].PatientID)
        # A key readable by others, or no key, is refused; a key is never overwritten.
        os.chmod(self.key, 0o644)
        try:
            p = run("anonymize", f, os.path.join(self.d, "x"), "--key", self.key, check=False)
        finally:
            os.chmod(self.key, 0o600)
        self.assertEqual(p.returncode, 1)
        self.assertIn("chmod 600", p.stderr)
        p = run("anonymize", f, os.path.join(self.d, "x"), check=False)
        self.assertIn("--key FILE is required", p.stderr)
        before = open(self.key, "rb").read()
        p = run("anonymize", "--make-key", self.key, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("never overwritten", p.stderr)
        self.assertEqual(open(self.key, "rb").read(), before)
        p = run("anonymize", f, os.path.join(self.d, "x"), "--key", self.key, "--option", "keep-names", check=False)
        self.assertIn("--option keep-names: unknown", p.stderr)

    def test_options_shift_dates_and_clean_descriptions(self):
        a = self.marked("opt.dcm", 2)
        out = os.path.join(self.d, "opt")
        shutil.rmtree(out, ignore_errors=True)
        run("anonymize", a, out, "--key", self.key, "--option", "retain-longitudinal-modified-dates",
            "--option", "clean-descriptors")
        ds = pydicom.dcmread(self.outputs(out)[0])
        src = pydicom.dcmread(a)
        import datetime
        shift = (datetime.date(1977, 11, 7) - datetime.datetime.strptime(ds.StudyDate, "%Y%m%d").date()).days
        self.assertTrue(1 <= shift <= 3650, shift)
        self.assertEqual(ds.LongitudinalTemporalInformationModified, "MODIFIED")
        self.assertEqual(ds.StudyTime, src.StudyTime)  # whole days: the time stays
        self.assertIn("113107", [c.CodeValue for c in ds.DeidentificationMethodCodeSequence])
        self.assertTrue(ds.StudyDescription.startswith("Head for "), ds.StudyDescription)
        self.assertNotIn(MARK, ds.StudyDescription)

    def test_retain_safe_private_keeps_only_what_is_known_safe(self):
        """PS3.15 E.3.10: attributes of Table E.3.10-1 and of blocks the file declares safe
        stay with their creators; the rest goes, a declared action is applied, and a kept
        private sequence is de-identified inside."""
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        def private(ds):
            ds.add_new((0x0019, 0x0010), "LO", "GEMS_ACQU_01")  # Table E.3.10-1
            ds.add_new((0x0019, 0x1023), "DS", "1.375")  # Table Speed: listed
            ds.add_new((0x0019, 0x1099), "LO", f"{MARK}GE")  # not listed
            ds.add_new((0x0019, 0x0011), "LO", "SIEMENS MR HEADER")  # listed creator, other group's rows
            ds.add_new((0x0019, 0x110C), "IS", "1000")  # B Value: listed
            ds.add_new((0x0099, 0x0010), "LO", "NQHeader")
            ds.add_new((0x0099, 0x1002), "UI", f"{MARK_UID}77")  # listed UID: kept as a keyed hash
            ds.add_new((0x0099, 0x1001), "UN", f"{MARK_UID}78".encode())  # listed, but of unknown type: goes
            ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA HEADER")  # not listed at all
            ds.add_new((0x0029, 0x1010), "OB", f"{MARK}CSA".encode())
            ds.add_new((0x0013, 0x0010), "LO", "ACME MIXED")
            ds.add_new((0x0013, 0x1001), "LO", "kept-value")
            ds.add_new((0x0013, 0x1002), "LO", f"{MARK}Z")
            ds.add_new((0x0013, 0x1003), "LO", f"{MARK}UNLISTED")
            ds.add_new((0x0015, 0x0010), "LO", "ACME SAFE")
            inner = Dataset()
            inner.PatientName = f"{MARK}^INNER"
            inner.add_new((0x0015, 0x0010), "LO", "ACME SAFE")  # a nested item names its own creators
            inner.add_new((0x0015, 0x1005), "DS", "2.5")
            inner.add_new((0x0015, 0x1105), "DS", "4.5")  # a block with no creator in the item: goes
            ds.add_new((0x0015, 0x1001), "SQ", Sequence([inner]))
            ds.add_new((0x0017, 0x0010), "LO", "ACME UNSAFE")
            ds.add_new((0x0017, 0x1001), "DS", "3.5")
            decl = []
            for group, creator, status in ((0x0013, "ACME MIXED", "MIXED"), (0x0015, "ACME SAFE", "SAFE"),
                                           (0x0017, "ACME UNSAFE", "UNSAFE"), (0x0019, "GEMS_ACQU_01", None)):
                if status is None:
                    continue
                item = Dataset()
                item.PrivateGroupReference = group
                item.PrivateCreatorReference = creator
                item.BlockIdentifyingInformationStatus = status
                if status == "MIXED":
                    item.NonidentifyingPrivateElements = [0x01]
                    act = Dataset()
                    act.IdentifyingPrivateElements = [0x02]
                    act.DeidentificationAction = "Z"
                    item.DeidentificationActionSequence = Sequence([act])
                decl.append(item)
            ds.PrivateDataElementCharacteristicsSequence = Sequence(decl)

        a = self.marked("safe.dcm", 6, extra=private)
        out = os.path.join(self.d, "safe")
        shutil.rmtree(out, ignore_errors=True)
        run("anonymize", a, out, "--key", self.key, "--option", "retain-safe-private")
        raw = open(self.outputs(out)[0], "rb").read()
        self.assertNotIn(MARK.encode(), raw)
        self.assertNotIn(MARK_UID.encode(), raw)
        ds = pydicom.dcmread(self.outputs(out)[0])
        kept = {(el.tag.group, el.tag.element): el.value for el in ds if el.tag.is_private}
        # With the sample CT's own ELSCINT1 attributes the table lists: acquisition duration,
        # acquisition type, table velocity, pitch, rotation time (its other ELSCINT1 ones, an
        # ID-like "453567-023322" among them, and its bulk OB/OW blocks go).
        elscint = [(0x00E1, 0x0010), (0x00E1, 0x1050), (0x01F1, 0x0010), (0x01F1, 0x1001), (0x01F1, 0x1007),
                   (0x01F1, 0x1026), (0x01F1, 0x1027)]
        self.assertEqual(sorted(kept), sorted([(0x0013, 0x0010), (0x0013, 0x1001), (0x0013, 0x1002), (0x0015, 0x0010),
                                               (0x0015, 0x1001), (0x0019, 0x0010), (0x0019, 0x0011), (0x0019, 0x1023),
                                               (0x0019, 0x110C), (0x0099, 0x0010), (0x0099, 0x1002)] + elscint))
        src = pydicom.dcmread(a)
        for tag in elscint:
            self.assertEqual(kept[tag], src[tag].value)  # kept as they were
        self.assertNotIn(b"453567-023322", raw)
        self.assertEqual(kept[(0x0013, 0x1001)], "kept-value")
        self.assertIn(kept[(0x0013, 0x1002)], ("", None))  # the declared action Z
        self.assertEqual(float(kept[(0x0019, 0x1023)]), 1.375)
        self.assertEqual(int(kept[(0x0019, 0x110C)]), 1000)
        self.assertTrue(str(kept[(0x0099, 0x1002)]).startswith("2.25."))
        inner = kept[(0x0015, 0x1001)][0]
        self.assertIn(str(inner.PatientName), ("", "None"))  # the profile applies inside
        self.assertEqual(float(inner[0x0015, 0x1005].value), 2.5)  # the block declared safe, inside too
        self.assertNotIn((0x0015, 0x1105), inner)
        self.assertIn("113111", [c.CodeValue for c in ds.DeidentificationMethodCodeSequence])
        log = open(os.path.join(out, "deidentification-log.tsv")).read().splitlines()
        header = log[0].split("\t")
        self.assertEqual(log[1].split("\t")[header.index("private_kept")], "20")  # 18 above, 2 in the nested item
        # Without the option nothing private stays.
        plain = os.path.join(self.d, "safe-plain")
        shutil.rmtree(plain, ignore_errors=True)
        run("anonymize", a, plain, "--key", self.key)
        self.assertFalse(any(el.tag.is_private for el in pydicom.dcmread(self.outputs(plain)[0]).iterall()))

    def test_burned_in_annotation_is_refused_unless_allowed(self):
        a = self.marked("burned.dcm", 4, extra=lambda ds: setattr(ds, "BurnedInAnnotation", "YES"))
        us = self.marked("us.dcm", 5, extra=lambda ds: setattr(ds, "Modality", "US"))
        out = os.path.join(self.d, "burned")
        shutil.rmtree(out, ignore_errors=True)
        p = run("anonymize", a, us, out, "--key", self.key, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("burned-in annotation", p.stderr)
        self.assertEqual(self.outputs(out), [])
        self.assertEqual(open(os.path.join(out, "deidentification-log.tsv")).read().count("refused"), 2)
        run("anonymize", a, us, out, "--key", self.key, "--allow-burned-in")
        self.assertEqual(len(self.outputs(out)), 2)

    def test_output_is_valid_dicom(self):
        # A real file (not marker-filled): dciodvfy finds no error the source lacks.
        out = os.path.join(self.d, "valid")
        shutil.rmtree(out, ignore_errors=True)
        run("anonymize", self.sample[0], out, "--key", self.key)
        f = self.outputs(out)[0]

        def errors(path):
            p = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
            return sorted({line.split(" - ")[0] if " - " not in line else line.split(":", 1)[-1].strip()
                           for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error")})

        new = set(errors(f)) - set(errors(self.sample[0]))
        self.assertEqual(new, set(), "\n".join(sorted(new)))
        self.assertEqual(subprocess.run(["dcmdump", f], capture_output=True).returncode, 0)

    def test_bad_files_are_named_and_the_rest_goes_on(self):
        bad = os.path.join(CORPUS, "bad")
        if not os.path.isdir(bad):
            self.skipTest("corpus missing")
        out = os.path.join(self.d, "bad")
        shutil.rmtree(out, ignore_errors=True)
        p = run("anonymize", bad, self.sample[0], out, "--key", self.key, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("truncated-header.dcm: file ends inside element", p.stderr)
        self.assertIn("deep-nesting.dcm", p.stderr)
        self.assertGreaterEqual(len(self.outputs(out)), 1)  # the good file is there
        log = open(os.path.join(out, "deidentification-log.tsv")).read()
        self.assertNotIn("truncated-header", log)  # numbered, not named
        self.assertIn("error: ", log)

    def test_patients_without_an_id_do_not_merge(self):
        def no_id(study):
            def f(ds):
                ds.PatientID = ""
                ds.StudyInstanceUID = f"{MARK_UID}{study}"
            return f
        a = self.marked("noid-a.dcm", 6, extra=no_id(71))
        b = self.marked("noid-b.dcm", 7, extra=no_id(72))
        out = os.path.join(self.d, "noid")
        shutil.rmtree(out, ignore_errors=True)
        run("anonymize", a, b, out, "--key", self.key)
        ids = {pydicom.dcmread(f).PatientID for f in self.outputs(out)}
        self.assertEqual(len(ids), 2, ids)
        self.assertIn("no patient ID", open(os.path.join(out, "deidentification-log.tsv")).read())

    def test_earlier_output_inside_the_input_is_not_input_again(self):
        src = os.path.join(self.d, "nested")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        shutil.copy(self.sample[8], os.path.join(src, "one.dcm"))
        out = os.path.join(src, "export")
        run("anonymize", src, out, "--key", self.key)
        first = self.outputs(out)
        run("anonymize", src, out, "--key", self.key)  # again, into the same place
        self.assertEqual(self.outputs(out), first)
        # Two copies of one instance: the second is reported, not silently merged.
        shutil.copy(self.sample[8], os.path.join(src, "two.dcm"))
        p = run("anonymize", os.path.join(src, "one.dcm"), os.path.join(src, "two.dcm"), os.path.join(self.d, "dup"),
                "--key", self.key, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the same instance", p.stderr)
