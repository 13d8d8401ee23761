#!/usr/bin/python3
"""lumen-cli checked from outside, against independent readers.

Run by CTest with LUMEN_CLI, LUMEN_CORPUS, LUMEN_SAMPLE, LUMEN_FULL_CT and LUMEN_WORK set.
References: dcm2niix (another DICOM-to-NIfTI converter), pydicom with its GDCM and
Pillow handlers (another DICOM decoder), nibabel (another NIfTI reader). Volumes are
compared through each file's affine, voxel by voxel at the same physical position.
"""
import json
import os
import subprocess
import unittest

import nibabel as nib
import numpy as np
import pydicom

from cli_common import CORPUS, FULL_CT, SAMPLE, WORK, run, workdir


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

if __name__ == "__main__":
    unittest.main()
