#!/usr/bin/python3
"""Reports and files out of Lumen, checked by independent readers: the TID 1500 SR and
PDF of `lumen-cli report` (dciodvfy, pydicom, pdftotext), and `lumen-cli compress`
(pixel values bit for bit through pydicom's decoders). Environment: cli_common.py."""
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
from pydicom.uid import generate_uid

from cli_common import CORPUS, SAMPLE, run, workdir
from test_results import dciodvfy_errors, foreign_seg


class Compression(unittest.TestCase):
    """lumen-cli compress: pixel values come back bit for bit, read by Lumen and by pydicom
    (GDCM's JPEG-LS and JPEG 2000 decoders), every other attribute kept."""

    def test_lossless_round_trip(self):
        d = workdir("compress")
        src = os.path.join(d, "in")
        os.makedirs(src)
        # 16-bit CT, signed data, MONOCHROME1, palette, RGB interleaved and planar, enhanced
        # multi-frame, and a 13 x 11 frame.
        for f in glob.glob(os.path.join(CORPUS, "photometric", "*.dcm")) + glob.glob(os.path.join(CORPUS, "enhanced", "*")):
            if not f.endswith("highbit.dcm"):
                shutil.copy(f, src)
        shutil.copytree(os.path.join(CORPUS, "phantom", "odd"), os.path.join(src, "odd"))
        first = sorted(glob.glob(os.path.join(SAMPLE, "*")))[0]
        shutil.copy(first, os.path.join(src, "ct.dcm"))
        signed = pydicom.dcmread(first)
        arr = signed.pixel_array.astype(np.int32) - 1024
        signed.PixelRepresentation, signed.BitsStored, signed.HighBit = 1, 16, 15
        signed.PixelData = arr.astype(np.int16).tobytes()
        signed.SOPInstanceUID = generate_uid()
        signed.file_meta.MediaStorageSOPInstanceUID = signed.SOPInstanceUID
        signed.save_as(os.path.join(src, "signed.dcm"))
        files = sorted(os.path.relpath(os.path.join(r, f), src) for r, _, fs in os.walk(src) for f in fs)
        self.assertEqual(len(files), 5 + 1 + 7 + 2)
        for syntax, uid in (("jpeg-ls", "1.2.840.10008.1.2.4.80"), ("jpeg2000", "1.2.840.10008.1.2.4.90"),
                            ("deflate", "1.2.840.10008.1.2.1.99")):
            out = os.path.join(d, syntax)
            r = json.loads(run("compress", src, out, "--syntax", syntax, "--json").stdout)
            self.assertEqual((r["files"], r["failed"]), (len(files), 0))
            self.assertGreater(r["ratio"], 1.5, syntax)
            for f in files:
                a, b = pydicom.dcmread(os.path.join(src, f)), pydicom.dcmread(os.path.join(out, f))
                self.assertEqual(b.file_meta.TransferSyntaxUID, uid, f)
                # Every attribute but the pixel data (and how it is laid out) is the source's.
                skip = {"PixelData", "PlanarConfiguration", "HighBit"}
                self.assertEqual({e.keyword: e.value for e in a if e.keyword not in skip and e.VR != "SQ"},
                                 {e.keyword: e.value for e in b if e.keyword not in skip and e.VR != "SQ"}, f)
                np.testing.assert_array_equal(a.pixel_array, b.pixel_array, f"{syntax} {f}")
                # Valid DICOM: DCMTK parses it, and dciodvfy finds no error the source lacks
                # (dciodvfy cannot read deflate: it checks DCMTK's inflated copy).
                subprocess.run(["dcmdump", "-q", os.path.join(out, f)], check=True, capture_output=True)
                checked = os.path.join(out, f)
                if syntax == "deflate":
                    checked = os.path.join(d, "inflated.dcm")
                    subprocess.run(["dcmconv", "+te", os.path.join(out, f), checked], check=True, capture_output=True)
                self.assertLessEqual(set(dciodvfy_errors(checked)), set(dciodvfy_errors(os.path.join(src, f))),
                                     f"{syntax} {f}")
                # Lumen's own reading of both: the same volume.
                na, nb = os.path.join(d, "a.nii.gz"), os.path.join(d, "b.nii.gz")
                run("convert", os.path.join(src, f), na)
                run("convert", os.path.join(out, f), nb)
                np.testing.assert_array_equal(np.asarray(nib.load(na).dataobj), np.asarray(nib.load(nb).dataobj),
                                              f"{syntax} {f}")
        # Samples with bits outside Bits Stored (12 bits said, 16 used; garbage below a high
        # bit of 15) are refused by the codecs that keep only the stored bits, not crashed on;
        # deflate keeps every bit.
        bad = pydicom.dcmread(os.path.join(src, "signed.dcm"))
        bad.BitsStored, bad.HighBit = 12, 11
        bad.save_as(os.path.join(d, "outside-bits.dcm"))
        # JPEG 2000 takes negative values sign-extended above the stored bits (same values).
        for f, refused in ((os.path.join(d, "outside-bits.dcm"), ("jpeg-ls",)),
                           (os.path.join(CORPUS, "photometric", "highbit.dcm"), ("jpeg-ls", "jpeg2000"))):
            for syntax in refused:
                p = run("compress", f, os.path.join(d, "x"), "--syntax", syntax, check=False)
                self.assertEqual(p.returncode, 1)
                self.assertIn("outside Bits Stored", p.stderr)
            run("compress", f, os.path.join(d, "x"), "--syntax", "deflate")
            self.assertEqual(pydicom.dcmread(os.path.join(d, "x", os.path.basename(f))).PixelData,
                             pydicom.dcmread(f).PixelData)
        run("compress", os.path.join(d, "outside-bits.dcm"), os.path.join(d, "j2k"), "--syntax", "jpeg2000")
        run("convert", os.path.join(d, "outside-bits.dcm"), os.path.join(d, "a.nii.gz"))
        run("convert", os.path.join(d, "j2k", "outside-bits.dcm"), os.path.join(d, "b.nii.gz"))
        np.testing.assert_array_equal(np.asarray(nib.load(os.path.join(d, "a.nii.gz")).dataobj),
                                      np.asarray(nib.load(os.path.join(d, "b.nii.gz")).dataobj))
        # A lossy source is refused, named; the rest goes on.
        lossy = os.path.join(d, "lossy")
        os.makedirs(lossy)
        shutil.copy(first, lossy)
        subprocess.run(["dcmcjpeg", "+eb", first, os.path.join(lossy, "baseline.dcm")], check=True)  # lossy baseline
        p = run("compress", lossy, os.path.join(d, "lossy-out"), "--syntax", "jpeg-ls", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("baseline.dcm", p.stderr)
        self.assertIn("lossily", p.stderr)
        self.assertIn("compressed 1 file(s)", p.stdout)


class Report(unittest.TestCase):
    """lumen-cli report: a TID 1500 SR of what the study database holds for a study."""

    def prepare(self, name):
        """A study database holding the box phantom, three measurements of it, a SEG of the
        box, and a classification result; returns (folder, data dir, study, series, seg, ai json)."""
        d = workdir(name)
        data = os.path.join(d, "data")
        box = os.path.join(CORPUS, "phantom", "box")  # 50 HU box, x -20..20, y -15..15, z -10..10 mm
        run("import", "--data-dir", data, box)
        src = pydicom.dcmread(sorted(glob.glob(os.path.join(box, "*")))[0])
        series, study = str(src.SeriesInstanceUID), str(src.StudyInstanceUID)
        # Measurements as the viewer stores them: on the axial slice z = 0, and one drawn on a
        # sagittal reformat (no image of the series holds it).
        doc = {"format": "lumen-measurements", "version": 1, "measurements": [
            {"id": 1, "kind": "distance", "points": [[-10, 0, 0], [20, 0, 0]], "right": [1, 0, 0], "up": [0, 1, 0],
             "text": "width"},
            {"id": 2, "kind": "rectangle", "points": [[-10, -5, 0], [10, 5, 0]], "right": [1, 0, 0], "up": [0, 1, 0],
             "text": ""},
            {"id": 3, "kind": "distance", "points": [[0, -5, -5], [0, 5, 5]], "right": [0, 1, 0], "up": [0, 0, 1],
             "text": "oblique"}]}
        con = sqlite3.connect(os.path.join(data, "lumen.db"))
        con.execute("INSERT INTO measurements(series_uid, volume, document) VALUES (?, '', ?)", (series, json.dumps(doc)))
        con.commit()
        con.close()
        # A SEG of the box, imported beside it.
        run("convert", box, os.path.join(d, "ct.nii.gz"))
        img = nib.load(os.path.join(d, "ct.nii.gz"))
        labels = (np.asarray(img.dataobj) == 50).astype(np.uint8)
        nib.save(nib.Nifti1Image(labels, img.affine), os.path.join(d, "box.nii.gz"))
        seg = os.path.join(d, "seg.dcm")
        run("convert", os.path.join(d, "box.nii.gz"), seg, "--reference", box)
        run("import", "--data-dir", data, seg)
        ai = os.path.join(d, "ai.json")
        with open(ai, "w") as f:
            json.dump({"model": "grader", "version": "2.1", "sha256": "ab" * 32, "device": "cpu", "task": "classification",
                       "probabilities": {"low": 0.2, "high": 0.8}, "predicted": "high", "detail": "noise SD 21.5 HU",
                       "input": {"series_uid": series}}, f)
        return d, data, study, series, seg, ai, labels, src

    def test_sr_of_measurements_segments_and_ai(self):
        d, data, study, series, seg, ai, labels, src = self.prepare("report")
        sr = os.path.join(d, "report.dcm")
        p = run("report", "--study", study, "--sr", sr, "--ai", ai, "--observer", "Doe^Jane", "--data-dir", data)
        self.assertIn("3 measurement(s), 1 segmentation(s), 1 AI result(s)", p.stdout)
        self.assertIn("oblique was drawn on a reformatted plane", p.stderr)
        self.assertEqual(dciodvfy_errors(sr), [])
        dump = subprocess.run(["dsrdump", "+Pc", sr], capture_output=True, text=True, check=True).stdout  # DCMTK's DSRDocument
        self.assertIn('"Imaging Measurement Report"', dump)
        self.assertIn('Doe^Jane', dump)
        self.assertIn('="width"', dump)
        self.assertIn('(410668003,SCT,"Length")="30" (mm,UCUM,"millimeter")', dump)
        self.assertIn('(42798000,SCT,"Area")="200" (mm2,UCUM,"square millimeter")', dump)
        self.assertEqual(dump.count('(112031,DCM,"Attenuation Coefficient")="50" ([hnsf\'U],UCUM,"Hounsfield unit")'), 4)
        volume = labels.sum() * 0.6 * 0.8 * 2.5 / 1000
        self.assertIn(f'(118565006,SCT,"Volume")="{volume:.6g}" (cm3,UCUM,"cubic centimeter")', dump)
        self.assertIn('(122157,DCM,"Probability")="0.8"', dump)
        self.assertIn('Probability of high', dump)
        self.assertIn('(AIDETAIL,99LUMEN,"AI result detail")="noise SD 21.5 HU"', dump)
        with open(sr, "rb") as fh:
            self.assertIn(("grader 2.1, SHA-256 " + "ab" * 32 + ", on cpu").encode(), fh.read())  # dsrdump shortens it
        ds = pydicom.dcmread(sr)
        self.assertEqual(ds.SOPClassUID, "1.2.840.10008.5.1.4.1.1.88.22")  # Enhanced SR
        self.assertEqual(ds.StudyInstanceUID, study)
        self.assertEqual(ds.PatientID, src.PatientID)
        refs = {str(i.ReferencedSOPInstanceUID) for s in ds.CurrentRequestedProcedureEvidenceSequence
                for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence}
        self.assertIn(str(pydicom.dcmread(seg).SOPInstanceUID), refs)
        # The image regions: the slice z = 0 of the series, in its pixel coordinates.
        self.assertIn("SCOORD", dump)
        # The report is now a series of the study.
        listing = run("list", "--data-dir", data).stdout
        self.assertIn("SR", listing)

    def test_a_result_without_a_class_is_reported_as_such(self):
        # A grader whose estimate lay outside the range it knows gave no class
        # ("predicted": null): the SR has no finding and no probabilities, and says why.
        d, data, study, series, seg, ai, labels, src = self.prepare("report-not-graded")
        with open(ai) as f:
            j = json.load(f)
        j.update(predicted=None, detail="not graded: outside the range the model knows (3-48 HU): noise SD about 71 HU")
        with open(ai, "w") as f:
            json.dump(j, f)
        sr = os.path.join(d, "report.dcm")
        run("report", "--study", study, "--sr", sr, "--ai", ai, "--data-dir", data)
        self.assertEqual(dciodvfy_errors(sr), [])
        dump = subprocess.run(["dsrdump", "+Pc", sr], capture_output=True, text=True, check=True).stdout
        ai_group = dump[dump.index("AI classification: grader"):]
        self.assertIn('(AIDETAIL,99LUMEN,"AI result detail")="not graded: outside the ran', ai_group)  # shortened by dsrdump
        self.assertNotIn('"Finding"', ai_group)
        self.assertNotIn('"Probability"', ai_group)  # no class, no probabilities to pick one from
        with open(sr, "rb") as fh:
            self.assertIn(b"not graded: outside the range the model knows (3-48 HU): noise SD about 71 HU", fh.read())

    def test_pdf_report(self):
        from PIL import Image
        d, data, study, series, seg, ai, labels, src = self.prepare("report-pdf")
        with open(ai) as f:
            j = json.load(f)
        j["disclaimer"] = "Research use only: not validated on patients."
        with open(ai, "w") as f:
            json.dump(j, f)
        logo = os.path.join(d, "logo.png")
        Image.new("RGB", (120, 40), (20, 60, 160)).save(logo)
        pdf = os.path.join(d, "report.pdf")
        p = run("report", "--study", study, "--pdf", pdf, "--ai", ai, "--observer", "Doe^Jane", "--findings",
                "A box of uniform density.\nNo other finding.", "--impression", "Phantom as expected.",
                "--institution", "Lumen Test Hospital", "--logo", logo, "--data-dir", data)
        self.assertIn("2 key image(s)", p.stdout)
        text = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True, check=True).stdout
        volume = labels.sum() * 0.6 * 0.8 * 2.5 / 1000
        for expected in ["Lumen Test Hospital", "PHANTOM, RAMP", "RAMP0001", "2024-01-02", "A box of uniform density.",
                         "No other", "Phantom as expected.", "width", "30.0 mm",
                         "area 200.0 mm2, mean 50.0 SD 0.0, min 50 max 50 HU", "14.1 mm", f"{volume:.2f} mL",
                         "high (p = 0.80); noise SD 21.5 HU", "ab" * 32, "Research use only: not validated on patients.", "Doe, Jane",
                         "not a medical device"]:
            self.assertIn(expected, text)
        # The pages as a reader sees them (kept for a person to look at): the key images show
        # the measurement outlines (yellow) and the segment (red over grey).
        prefix = os.path.join(d, "page")
        subprocess.run(["pdftoppm", "-png", "-r", "60", pdf, prefix], check=True)
        pages = sorted(glob.glob(prefix + "*.png"))
        self.assertGreaterEqual(len(pages), 1)
        pixels = np.concatenate([np.asarray(Image.open(f).convert("RGB")).reshape(-1, 3) for f in pages]).astype(int)
        yellow = ((pixels[:, 0] > 200) & (pixels[:, 1] > 170) & (pixels[:, 2] < 80)).sum()
        red = ((pixels[:, 0] > 150) & (pixels[:, 1] < 110) & (pixels[:, 2] < 110)).sum()
        blue_logo = ((pixels[:, 0] < 60) & (pixels[:, 1] < 100) & (pixels[:, 2] > 130)).sum()
        self.assertGreater(yellow, 50)
        self.assertGreater(red, 2000)
        self.assertGreater(blue_logo, 100)
        # Stored in the study as Encapsulated PDF: the same bytes, valid DICOM.
        con = sqlite3.connect(os.path.join(data, "lumen.db"))
        paths = [r[0] for r in con.execute("SELECT i.path FROM instances i JOIN series s ON i.series_ref = s.id "
                                           "WHERE s.modality = 'DOC'")]
        con.close()
        self.assertEqual(len(paths), 1)
        doc = pydicom.dcmread(paths[0])
        with open(pdf, "rb") as fh:
            self.assertEqual(bytes(doc.EncapsulatedDocument)[:int(doc.EncapsulatedDocumentLength)], fh.read())
        self.assertEqual(doc.StudyInstanceUID, study)
        self.assertEqual(doc.MIMETypeOfEncapsulatedDocument, "application/pdf")
        self.assertEqual(dciodvfy_errors(paths[0]), [])
        # DCMTK takes the PDF back out, byte for byte.
        subprocess.run(["dcm2pdf", paths[0], os.path.join(d, "back.pdf")], check=True, capture_output=True)
        with open(pdf, "rb") as a, open(os.path.join(d, "back.pdf"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        # A logo that is not there is named, and nothing is written.
        p = run("report", "--study", study, "--pdf", os.path.join(d, "x.pdf"), "--logo", os.path.join(d, "none.png"),
                "--data-dir", data, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("none.png", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "x.pdf")))

    def test_resampled_slices_and_overlapping_segments(self):
        """On a series with missing slices the loader interpolates two: a measurement on one
        of them gets no image region (no acquired image holds those pixels), one on an
        acquired slice points at that image. A SEG whose segments overlap is refused."""
        d = workdir("report-resampled")
        data = os.path.join(d, "data")
        series_dir = os.path.join(CORPUS, "ramp", "missing")  # z = -20 + 2.5 k, k = 8 and 9 missing
        run("import", "--data-dir", data, series_dir)
        src = sorted((pydicom.dcmread(f) for f in glob.glob(os.path.join(series_dir, "*"))),
                     key=lambda x: float(x.ImagePositionPatient[2]))
        doc = {"format": "lumen-measurements", "version": 1, "measurements": [
            {"id": 1, "kind": "distance", "points": [[-20, -10, 0], [0, -10, 0]], "right": [1, 0, 0], "up": [0, 1, 0],
             "text": "interpolated"},
            {"id": 2, "kind": "distance", "points": [[-20, -10, -15], [0, -10, -15]], "right": [1, 0, 0],
             "up": [0, 1, 0], "text": "acquired"}]}
        con = sqlite3.connect(os.path.join(data, "lumen.db"))
        con.execute("INSERT INTO measurements(series_uid, volume, document) VALUES (?, '', ?)",
                    (str(src[0].SeriesInstanceUID), json.dumps(doc)))
        con.commit()
        con.close()
        sr = os.path.join(d, "sr.dcm")
        p = run("report", "--study", str(src[0].StudyInstanceUID), "--sr", sr, "--data-dir", data)
        self.assertIn("interpolated lies on a slice the loader resampled", p.stderr)
        self.assertNotIn("acquired lies", p.stderr)
        ds = pydicom.dcmread(sr)
        refs = []

        def walk(items):
            for it in items:
                if getattr(it, "ValueType", "") == "IMAGE":
                    refs.append(str(it.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
                walk(getattr(it, "ContentSequence", []))
        walk(ds.ContentSequence)
        at_minus_15 = [str(x.SOPInstanceUID) for x in src if abs(float(x.ImagePositionPatient[2]) + 15) < 1e-3]
        self.assertEqual(refs, at_minus_15)  # one image region: the acquired slice's own image

        # Overlapping segments: one label per voxel cannot give them their volumes.
        run("convert", series_dir, os.path.join(d, "ct.nii.gz"))
        img = nib.load(os.path.join(d, "ct.nii.gz"))
        shape = img.shape
        big = np.zeros(shape, bool)
        big[5:30, 5:25, 2:6] = True
        small = np.zeros(shape, bool)
        small[10:20, 10:20, 3:5] = True
        seg = os.path.join(d, "overlap.dcm")
        acquired = [x for x in src]  # the SEG's frames on acquired slices only (k 2..5 exist)
        grid_z = [-20 + 2.5 * k for k in range(shape[2])]
        by_z = {round(float(x.ImagePositionPatient[2]), 3): x for x in acquired}
        foreign_seg(seg, [by_z[round(z, 3)] if round(z, 3) in by_z else acquired[0] for z in grid_z],
                    {1: big, 2: small})
        run("import", "--data-dir", data, seg)
        p = run("report", "--study", str(src[0].StudyInstanceUID), "--sr", os.path.join(d, "sr2.dcm"), "--data-dir", data,
                check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("overlap.dcm", p.stderr)
        self.assertIn("segments overlap", p.stderr)

    def test_nothing_to_report(self):
        d = workdir("report-empty")
        data = os.path.join(d, "data")
        box = os.path.join(CORPUS, "phantom", "box")
        run("import", "--data-dir", data, box)
        study = str(pydicom.dcmread(sorted(glob.glob(os.path.join(box, "*")))[0]).StudyInstanceUID)
        p = run("report", "--study", study, "--sr", os.path.join(d, "r.dcm"), "--data-dir", data, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no measurements or segmentations", p.stderr)
        p = run("report", "--study", "1.2.3", "--sr", os.path.join(d, "r.dcm"), "--data-dir", data, check=False)
        self.assertIn("not in the study database", p.stderr)


if __name__ == "__main__":
    unittest.main()
