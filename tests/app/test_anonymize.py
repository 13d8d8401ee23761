#!/usr/bin/python3
"""lumen-cli anonymize checked from outside against DICOM PS3.15 Table E.1-1: markers in
every attribute the table names, pixel data unchanged, UIDs replaced consistently, the
output valid DICOM. Environment: cli_common.py."""
import os
import shutil
import subprocess
import unittest

import pydicom

from cli_common import CORPUS, SAMPLE, run, workdir


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

if __name__ == "__main__":
    unittest.main()
