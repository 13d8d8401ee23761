#!/usr/bin/python3
"""Results out of Lumen, checked by independent readers: DICOM SEG written by lumen-cli
(convert, infer) is read with pydicom's own bit unpacking and dciodvfy; a SEG written here
with pydicom from the standard's description (not by Lumen) is read by lumen-cli. The
report (SR, PDF) and lossless compression: test_report.py.

Environment as the other lumen-cli tests (cli_common.py: LUMEN_CLI, LUMEN_CORPUS, LUMEN_SAMPLE, LUMEN_WORK,
LUMEN_TEST_MODELS)."""
import glob
import json
import os
import shutil
import sqlite3
import subprocess
import unittest

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cli_common import CORPUS, SAMPLE, infer, run, workdir

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def read_json(path):
    with open(path) as f:
        return json.load(f)


def dciodvfy_errors(path):
    p = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
    return [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error")]


def ras_to_index(affine, lps):
    """Continuous voxel index of an LPS point, through a NIfTI (RAS) affine."""
    ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
    return (np.linalg.inv(affine) @ ras)[:3]


def labels_from_seg(path, affine, shape):
    """A label volume (segment number per voxel) rebuilt from a SEG with pydicom alone: each
    frame placed at the slice its Image Position (Patient) names."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    out = np.zeros(shape, np.uint8)
    for f, pf in enumerate(ds.PerFrameFunctionalGroupsSequence):
        seg = int(pf.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ijk = ras_to_index(affine, [float(v) for v in pf.PlanePositionSequence[0].ImagePositionPatient])
        assert np.allclose(ijk[:2], 0, atol=1e-3) and abs(ijk[2] - round(ijk[2])) < 1e-3, ijk
        k = int(round(ijk[2]))
        # Frame rows are j, columns i; the NIfTI array is [i, j, k].
        out[:, :, k][frames[f].T != 0] = seg
    return ds, out


def cone_and_slab(shape):
    """Label 1: a cone along k, on every slice; label 2: a slab at low j on the inner slices."""
    ni, nj, nk = shape
    i, j, k = np.meshgrid(np.arange(ni), np.arange(nj), np.arange(nk), indexing="ij")
    radius = 0.4 * min(ni, nj) * (0.5 + 0.5 * k / max(1, nk - 1))
    labels = np.zeros(shape, np.uint8)
    labels[np.hypot(i - (ni - 1) / 2, j - (nj - 1) / 2) <= radius] = 1
    labels[(j < 2) & (k >= 1) & (k < nk - 1)] = 2
    return labels


SIDECAR = {"format": "lumen-labels", "version": 1, "labels": [
    {"value": 1, "name": "Liver", "color": [221, 130, 101], "opacity": 1.0, "visible": True,
     "category": {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"},
     "type": {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}},
    {"value": 2, "name": "Lesion", "color": [30, 200, 60], "opacity": 1.0, "visible": True,
     "category": {"value": "49755003", "scheme": "SCT", "meaning": "Morphologically Abnormal Structure"},
     "type": {"value": "52988006", "scheme": "SCT", "meaning": "Lesion"}}]}


def foreign_seg(path, src, masks, kind="BINARY"):
    """A SEG written with pydicom from PS3.3 C.8.20, not by Lumen: bits run on across frames,
    frames in reverse order, geometry per frame. `src`: the source images sorted along z;
    `masks`: segment number -> boolean array [i, j, k] on their grid."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SEG_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = SEG_CLASS, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "SEG"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = src[0].StudyInstanceUID, generate_uid()
    ds.FrameOfReferenceUID = src[0].FrameOfReferenceUID
    ref = Dataset()
    ref.SeriesInstanceUID = src[0].SeriesInstanceUID
    ds.ReferencedSeriesSequence = Sequence([ref])
    ds.Rows, ds.Columns = src[0].Rows, src[0].Columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.SegmentationType = kind
    if kind == "BINARY":
        ds.BitsAllocated = ds.BitsStored = 1
        ds.HighBit = 0
    else:
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.SegmentationFractionalType = "PROBABILITY"
        ds.MaximumFractionalValue = 200
    segs = []
    for n in sorted(masks):
        name = ("First", "Second", "Third")[n - 1]
        s = Dataset()
        s.SegmentNumber, s.SegmentLabel, s.SegmentAlgorithmType = n, name, "MANUAL"
        s.RecommendedDisplayCIELabValue = [53000, 50000, 45000]
        segs.append(s)
    ds.SegmentSequence = Sequence(segs)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = src[0].PixelSpacing
    pm.SliceThickness = "3"
    shared.PixelMeasuresSequence = Sequence([pm])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames, groups = [], []
    for k in reversed(range(len(src))):
        for n in sorted(masks, reverse=True):
            mask = masks[n][:, :, k].T
            if not mask.any():
                continue
            pf = Dataset()
            si = Dataset()
            si.ReferencedSegmentNumber = n
            pf.SegmentIdentificationSequence = Sequence([si])
            pp = Dataset()
            pp.ImagePositionPatient = src[k].ImagePositionPatient
            pf.PlanePositionSequence = Sequence([pp])
            po = Dataset()
            po.ImageOrientationPatient = src[k].ImageOrientationPatient
            pf.PlaneOrientationSequence = Sequence([po])
            groups.append(pf)
            # Fractional: 150 of 200 is inside, 90 of 200 is not.
            frames.append(mask.astype(np.uint8) if kind == "BINARY" else np.where(mask, 150, 90).astype(np.uint8))
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.NumberOfFrames = len(frames)
    flat = np.concatenate([f.ravel() for f in frames])
    data = np.packbits(flat, bitorder="little").tobytes() if kind == "BINARY" else flat.tobytes()
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB"
    ds.save_as(path, write_like_original=False)


class Segmentation(unittest.TestCase):
    """DICOM SEG: lumen-cli convert (both ways) and lumen-cli infer --output x.dcm."""

    def label_map(self, series, name):
        d = workdir("seg-" + name)
        run("convert", series, os.path.join(d, "image.nii.gz"))
        img = nib.load(os.path.join(d, "image.nii.gz"))
        labels = cone_and_slab(img.shape)
        path = os.path.join(d, "labels.nii.gz")
        nib.save(nib.Nifti1Image(labels, img.affine), path)
        with open(os.path.join(d, "labels.labels.json"), "w") as f:
            json.dump(SIDECAR, f)
        return d, img, labels, path

    def test_label_map_to_seg_and_back_with_an_odd_frame_size(self):
        # 13 x 11 pixels: DCMTK 3.6.7 alone would corrupt every frame after the first.
        series = os.path.join(CORPUS, "phantom", "odd")
        d, img, labels, path = self.label_map(series, "odd")
        seg = os.path.join(d, "seg.dcm")
        p = run("convert", path, seg, "--reference", series, "--algorithm-type", "semiautomatic",
                "--algorithm-name", "Lumen label editor")
        self.assertIn("2 segment(s)", p.stdout)
        self.assertEqual(dciodvfy_errors(seg), [])
        ds, rebuilt = labels_from_seg(seg, img.affine, labels.shape)
        np.testing.assert_array_equal(rebuilt, labels)  # pydicom's unpacking, voxel for voxel
        self.assertEqual(ds.SOPClassUID, SEG_CLASS)
        self.assertEqual(ds.SegmentationType, "BINARY")
        self.assertEqual(int(ds.NumberOfFrames), 7 + 5)  # empty frames left out
        self.assertEqual([s.SegmentLabel for s in ds.SegmentSequence], ["Liver", "Lesion"])
        self.assertEqual(ds.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeValue, "52988006")
        self.assertEqual(ds.SegmentSequence[0].SegmentAlgorithmType, "SEMIAUTOMATIC")
        self.assertEqual(ds.SegmentSequence[0].SegmentAlgorithmName, "Lumen label editor")
        sources = {pydicom.dcmread(f).SOPInstanceUID: f for f in glob.glob(os.path.join(series, "*"))}
        src = pydicom.dcmread(next(iter(sources.values())))
        self.assertEqual(ds.StudyInstanceUID, src.StudyInstanceUID)
        self.assertEqual(ds.PatientID, src.PatientID)
        self.assertEqual(ds.FrameOfReferenceUID, src.FrameOfReferenceUID)
        self.assertNotEqual(ds.SeriesInstanceUID, src.SeriesInstanceUID)
        ref = ds.ReferencedSeriesSequence[0]
        self.assertEqual(ref.SeriesInstanceUID, src.SeriesInstanceUID)
        self.assertEqual({i.ReferencedSOPInstanceUID for i in ref.ReferencedInstanceSequence}, set(sources))
        # Each frame derives from the source image at its own position.
        for pf in ds.PerFrameFunctionalGroupsSequence:
            uid = pf.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            self.assertEqual([float(v) for v in pydicom.dcmread(sources[uid]).ImagePositionPatient],
                             [float(v) for v in pf.PlanePositionSequence[0].ImagePositionPatient])

        back = os.path.join(d, "back.nii.gz")
        run("convert", seg, back, "--reference", series)
        out = nib.load(back)
        np.testing.assert_array_equal(np.asarray(out.dataobj), labels)
        np.testing.assert_allclose(out.affine, img.affine, atol=1e-4)
        side = read_json(os.path.join(d, "back.labels.json"))
        self.assertEqual([(l["value"], l["name"], l["color"]) for l in side["labels"]],
                         [(1, "Liver", [221, 130, 101]), (2, "Lesion", [30, 200, 60])])
        self.assertEqual(side["labels"][0]["type"]["value"], "10200004")

    def test_oblique_series(self):
        series = os.path.join(CORPUS, "ramp", "oblique")
        d, img, labels, path = self.label_map(series, "oblique")
        seg = os.path.join(d, "seg.dcm")
        run("convert", path, seg, "--reference", series)
        self.assertEqual(dciodvfy_errors(seg), [])
        ds, rebuilt = labels_from_seg(seg, img.affine, labels.shape)
        np.testing.assert_array_equal(rebuilt, labels)
        self.assertEqual(ds.SegmentSequence[0].SegmentAlgorithmType, "MANUAL")
        back = os.path.join(d, "back.nii.gz")
        run("convert", seg, back, "--reference", series)
        np.testing.assert_array_equal(np.asarray(nib.load(back).dataobj), labels)

    def test_a_seg_written_by_another_writer(self):
        """A SEG made here with pydicom from PS3.3 C.8.20 (bits run on across frames, frames
        in reverse order, geometry per frame), binary and fractional, read by lumen-cli."""
        series = os.path.join(CORPUS, "phantom", "odd")
        d, img, labels, _ = self.label_map(series, "foreign")
        files = sorted(glob.glob(os.path.join(series, "*")))
        src = [pydicom.dcmread(f) for f in files]
        src.sort(key=lambda s: float(s.ImagePositionPatient[2]))
        for kind in ("BINARY", "FRACTIONAL"):
            theirs = os.path.join(d, f"theirs-{kind.lower()}.dcm")
            foreign_seg(theirs, src, {1: labels == 1, 2: labels == 2}, kind)
            out = os.path.join(d, f"theirs-{kind.lower()}.nii.gz")
            run("convert", theirs, out, "--reference", series)
            np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), labels, kind)
            side = read_json(os.path.join(d, f"theirs-{kind.lower()}.labels.json"))
            self.assertEqual([l["name"] for l in side["labels"]], ["First", "Second"])

    def test_refusals_name_the_problem(self):
        series = os.path.join(CORPUS, "phantom", "odd")
        d, img, labels, path = self.label_map(series, "refusals")
        p = run("convert", path, os.path.join(d, "x.dcm"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--reference", p.stderr)
        p = run("convert", path, os.path.join(d, "x.dcm"), "--reference", series, "--algorithm-type", "automatic",
                check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("algorithm's name", p.stderr)
        # A label map of another grid is not silently placed on this one.
        other = os.path.join(CORPUS, "ramp", "axial-shuffled")
        p = run("convert", path, os.path.join(d, "x.dcm"), "--reference", other, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not on the grid", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "x.dcm")))
        seg = os.path.join(d, "seg.dcm")
        run("convert", path, seg, "--reference", series)
        p = run("convert", seg, os.path.join(d, "x.nii.gz"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--reference", p.stderr)
        # pydicom's test SEG describes three frames but holds the pixels of one: named, refused.
        liver = os.path.join(CORPUS, "pydicom", "liver_1frame.dcm")
        p = run("convert", liver, os.path.join(d, "x.nii.gz"), "--reference", series, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("liver_1frame.dcm", p.stderr)
        self.assertIn("3 frame(s) in its Per-frame Functional Groups but has 1", p.stderr)
        # A SEG shown on another series of another frame of reference: refused.
        p = run("convert", seg, os.path.join(d, "x.nii.gz"), "--reference", other, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("frame of reference", p.stderr)

    def test_rt_structure_set_is_rasterised(self):
        """An RT Structure Set written here with pydicom (closed planar contours, one with a
        hole) onto the box phantom's grid: the voxels whose centres are inside."""
        box = os.path.join(CORPUS, "phantom", "box")  # x -30..29.4 (0.6), y -36..35.2 (0.8), z -30..27.5 (2.5)
        d, img, _, _ = self.label_map(box, "rtstruct")
        src = [pydicom.dcmread(f) for f in sorted(glob.glob(os.path.join(box, "*")))]
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.481.3", ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "RTSTRUCT", src[0].StudyInstanceUID, generate_uid()
        ref_for = Dataset()
        ref_for.FrameOfReferenceUID = src[0].FrameOfReferenceUID
        study = Dataset()
        study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        study.ReferencedSOPInstanceUID = src[0].StudyInstanceUID
        series = Dataset()
        series.SeriesInstanceUID = src[0].SeriesInstanceUID
        study.RTReferencedSeriesSequence = Sequence([series])
        ref_for.RTReferencedStudySequence = Sequence([study])
        ds.ReferencedFrameOfReferenceSequence = Sequence([ref_for])
        rois, contours = [], []
        # ROI 7 "Slab": x -12.1..12.1, y -8.1..8.1 on z = -5 .. 5; ROI 3 "Ring": the square
        # x, y in -20.1..20.1 with the square -10.1..10.1 cut out, on z = 10.
        def square(h, z):
            return [-h, -h, z, h, -h, z, h, h, z, -h, h, z]
        def rect(hx, hy, z):
            return [-hx, -hy, z, hx, -hy, z, hx, hy, z, -hx, hy, z]
        for number, name, colour, planes in ((7, "Slab", [200, 100, 0], [rect(12.1, 8.1, z) for z in (-5, -2.5, 0, 2.5, 5)]),
                                             (3, "Ring", [0, 120, 250], [square(20.1, 10), square(10.1, 10)])):
            roi = Dataset()
            roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, src[0].FrameOfReferenceUID
            rois.append(roi)
            rc = Dataset()
            rc.ReferencedROINumber, rc.ROIDisplayColor = number, colour
            items = []
            for pts in planes:
                c = Dataset()
                c.ContourGeometricType, c.NumberOfContourPoints, c.ContourData = "CLOSED_PLANAR", len(pts) // 3, pts
                items.append(c)
            rc.ContourSequence = Sequence(items)
            contours.append(rc)
        ds.StructureSetROISequence = Sequence(rois)
        ds.ROIContourSequence = Sequence(contours)
        rt = os.path.join(d, "rtstruct.dcm")
        ds.save_as(rt, write_like_original=False)
        out = os.path.join(d, "rt.nii.gz")
        run("convert", rt, out, "--reference", box)
        got = np.asarray(nib.load(out).dataobj)
        # Voxel centres in LPS from the image's affine (RAS), as nibabel sees them.
        ijk = np.indices(got.shape).reshape(3, -1)
        ras = img.affine[:3, :3] @ ijk + img.affine[:3, 3:4]
        x, y, z = -ras[0], -ras[1], ras[2]
        slab = (np.abs(x) <= 12.1) & (np.abs(y) <= 8.1) & np.isin(np.round(z, 3), [-5, -2.5, 0, 2.5, 5])
        ring = (np.abs(x) <= 20.1) & (np.abs(y) <= 20.1) & ~((np.abs(x) <= 10.1) & (np.abs(y) <= 10.1)) & (np.round(z, 3) == 10)
        want = np.zeros(got.size, np.uint8)
        want[slab] = 1  # "Slab" is the first ROI of the Structure Set ROI Sequence: label 1
        want[ring] = 2
        np.testing.assert_array_equal(got.reshape(-1), want)
        side = read_json(os.path.join(d, "rt.labels.json"))
        self.assertEqual([(l["value"], l["name"], l["color"]) for l in side["labels"]],
                         [(1, "Slab", [200, 100, 0]), (2, "Ring", [0, 120, 250])])
        # pydicom's own RT structure set lies in another frame of reference: refused, named.
        theirs = "/usr/lib/python3/dist-packages/pydicom/data/test_files/rtstruct.dcm"
        if os.path.exists(theirs):
            p = run("convert", theirs, os.path.join(d, "x.nii.gz"), "--reference", box, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("rtstruct.dcm", p.stderr)
            self.assertIn("frame of reference", p.stderr)



class InferSeg(unittest.TestCase):
    """lumen-cli infer --output result.dcm (needs the AI plug-in: not in the sanitizer build)."""

    def test_infer_writes_a_seg_of_the_dicom_input(self):
        d = workdir("seg-infer")
        labels_path, seg = os.path.join(d, "labels.nii.gz"), os.path.join(d, "result.dcm")
        infer("-m", "monai_probabilities", SAMPLE, "-o", labels_path)
        p = infer("-m", "monai_probabilities", SAMPLE, "-o", seg, "--report", os.path.join(d, "seg-report.json"))
        self.assertIn("result.dcm", p.stdout)
        # The JSON beside a SEG still holds each label's volume.
        seg_report = read_json(os.path.join(d, "seg-report.json"))
        self.assertTrue(seg_report["labels"])
        self.assertTrue(all(v["voxels"] > 0 and v["volume_ml"] > 0 for v in seg_report["labels"].values()))
        self.assertEqual(dciodvfy_errors(seg), [])
        img = nib.load(labels_path)
        labels = np.asarray(img.dataobj).astype(np.uint8)
        ds, rebuilt = labels_from_seg(seg, img.affine, labels.shape)
        np.testing.assert_array_equal(rebuilt, labels)
        infer("-m", "monai_probabilities", SAMPLE, "-o", os.path.join(d, "r.json"))
        report = read_json(os.path.join(d, "r.json"))
        seg0 = ds.SegmentSequence[0]
        self.assertEqual(seg0.SegmentAlgorithmType, "AUTOMATIC")
        self.assertEqual(seg0.SegmentAlgorithmName, "monai_probabilities")
        algo = seg0.SegmentationAlgorithmIdentificationSequence[0]
        self.assertEqual(algo.AlgorithmVersion, report["version"])
        self.assertIn(report["sha256"], algo.AlgorithmParameters)
        self.assertEqual(ds.ReferencedSeriesSequence[0].SeriesInstanceUID,
                         pydicom.dcmread(sorted(glob.glob(os.path.join(SAMPLE, "*")))[0]).SeriesInstanceUID)
        # The SEG of a series in the study database becomes a series of its study there.
        data = os.path.join(d, "data")
        shutil.rmtree(data, ignore_errors=True)
        run("import", "--data-dir", data, SAMPLE)
        p = infer("-m", "monai_probabilities", SAMPLE, "-o", os.path.join(d, "stored.dcm"), "--data-dir", data)
        self.assertIn("stored in the study database as a series of its study", p.stderr)
        # A --data-dir without a study database is said, not ignored.
        q = infer("-m", "monai_probabilities", SAMPLE, "-o", os.path.join(d, "nowhere.dcm"), "--data-dir",
                  os.path.join(d, "empty"), check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn("holds no study database", q.stderr)
        con = sqlite3.connect(os.path.join(data, "lumen.db"))
        rows = con.execute("SELECT st.study_uid, i.managed, i.sop_uid FROM series s JOIN studies st ON s.study_ref = st.id "
                           "JOIN instances i ON i.series_ref = s.id WHERE s.modality = 'SEG'").fetchall()
        con.close()
        stored = pydicom.dcmread(os.path.join(d, "stored.dcm"))
        self.assertEqual(rows, [(str(ds.StudyInstanceUID), 1, str(stored.SOPInstanceUID))])
        # A NIfTI input cannot be referenced.
        q = infer("-m", "monai_probabilities", labels_path, "-o", os.path.join(d, "x.dcm"), check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn("must be a DICOM series", q.stderr)

    def test_infer_writes_a_derived_series_of_an_enhancement_model(self):
        d = workdir("derived-infer")
        out = os.path.join(d, "enhanced")
        data = os.path.join(d, "data")
        run("import", "--data-dir", data, SAMPLE)
        p = infer("-m", "gui_enhance", SAMPLE, "-o", out + "/", "--uid-seed", "derived-test", "--data-dir", data,
                  "--report", os.path.join(d, "report.json"))
        self.assertIn("stored in the study database as a series of its study", p.stderr)
        sources = {}
        for f in glob.glob(os.path.join(SAMPLE, "*")):
            ds = pydicom.dcmread(f)
            sources[ds.SOPInstanceUID] = ds
        files = sorted(glob.glob(os.path.join(out, "*.dcm")))
        self.assertEqual(len(files), len(sources))
        # dciodvfy: nothing wrong that the source did not have already (a scanner's empty
        # sequences are copied, not repaired), in any slice.
        by_sop = {pydicom.dcmread(f).SOPInstanceUID: f for f in glob.glob(os.path.join(SAMPLE, "*"))}
        for f in files[::10]:
            src = by_sop[pydicom.dcmread(f).SourceImageSequence[0].ReferencedSOPInstanceUID]
            self.assertLessEqual(set(dciodvfy_errors(f)), set(dciodvfy_errors(src)), f)
        series = set()
        for f in files:
            ds = pydicom.dcmread(f)
            src = sources[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
            self.assertEqual(ds.SourceImageSequence[0].ReferencedSOPClassUID, src.SOPClassUID)
            self.assertEqual(ds.SourceImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue, "121322")
            self.assertEqual(list(ds.ImageType), ["DERIVED", "SECONDARY", *list(src.ImageType)[2:]])
            self.assertIn("gui_enhance", ds.DerivationDescription)
            self.assertEqual((ds.StudyInstanceUID, ds.FrameOfReferenceUID, ds.PatientID),
                             (src.StudyInstanceUID, src.FrameOfReferenceUID, src.PatientID))
            self.assertEqual(ds.ImagePositionPatient, src.ImagePositionPatient)
            self.assertNotEqual(ds.SeriesInstanceUID, src.SeriesInstanceUID)
            self.assertEqual(int(ds.SeriesNumber), int(src.SeriesNumber) + 2000)
            series.add(ds.SeriesInstanceUID)
            # An identity model: the same HU in every pixel, through each file's own rescale.
            hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            hu_src = src.pixel_array.astype(np.float64) * float(src.RescaleSlope) + float(src.RescaleIntercept)
            self.assertLessEqual(np.abs(hu - hu_src).max(), 1.0, f)
        self.assertEqual(len(series), 1)
        self.assertEqual(read_json(os.path.join(d, "report.json"))["derived_series_uid"], series.pop())
        con = sqlite3.connect(os.path.join(data, "lumen.db"))
        n = con.execute("SELECT COUNT(*) FROM instances i JOIN series s ON i.series_ref = s.id "
                        "WHERE s.series_uid = ? AND i.managed = 1", (str(ds.SeriesInstanceUID),)).fetchone()[0]
        con.close()
        self.assertEqual(n, len(files))
        # The same seed, the same UIDs (a batch re-making it sends nothing new).
        again = os.path.join(d, "again")
        infer("-m", "gui_enhance", SAMPLE, "-o", again + "/", "--uid-seed", "derived-test")
        self.assertEqual(sorted(pydicom.dcmread(f).SOPInstanceUID for f in glob.glob(os.path.join(again, "*"))),
                         sorted(pydicom.dcmread(f).SOPInstanceUID for f in files))
        # Refusals name the reason: a folder that holds files, a model that gives no images,
        # an input that has no DICOM instances to derive from.
        q = infer("-m", "gui_enhance", SAMPLE, "-o", out + "/", check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn("not empty", q.stderr)
        q = infer("-m", "gui_segment", SAMPLE, "-o", os.path.join(d, "seg-series") + "/", check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn("a derived image series holds an enhancement model's images", q.stderr)
        run("convert", SAMPLE, os.path.join(d, "ct.nii.gz"))
        q = infer("-m", "gui_enhance", os.path.join(d, "ct.nii.gz"), "-o", os.path.join(d, "from-nifti") + "/",
                  check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn("must be a DICOM series", q.stderr)


if __name__ == "__main__":
    unittest.main()
