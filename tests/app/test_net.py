#!/usr/bin/python3
"""lumen-cli's DICOM networking against real peers: Orthanc (a PACS) and dcmtk's tools.

Run by CTest inside private network and mount namespaces (tests/app/netns.sh): every
server here listens on a loopback nobody else can reach. Environment: LUMEN_CLI,
LUMEN_SAMPLE (a real CT series), LUMEN_CORPUS (test corpus: a series whose slices use
different compressed transfer syntaxes), LUMEN_WORK.

Every transfer is checked voxel by voxel with pydicom against the source files, matched by
SOP Instance UID; what lands in Orthanc is read back through its REST API.
"""
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import nibabel as nib
import numpy as np
import pydicom
from pydicom.uid import generate_uid

CLI = os.environ.get("LUMEN_CLI", "lumen-cli")
SAMPLE = os.environ.get("LUMEN_SAMPLE", "")
CORPUS = os.environ.get("LUMEN_CORPUS", "")
WORK = os.environ.get("LUMEN_WORK", tempfile.gettempdir())
ORTHANC_HTTP = "http://127.0.0.1:8042"
ORTHANC_PORT = 4242
LUMEN_PORT = 11112
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def workdir(name):
    d = os.path.join(WORK, "net", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


ENV = dict(os.environ)


def run(*args, check=True, timeout=300):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        raise AssertionError(f"sanitizer report from lumen-cli {' '.join(args)}:\n{p.stderr}")
    if check and p.returncode != 0:
        raise AssertionError(f"lumen-cli {' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


def http(method, path, body=None):
    req = urllib.request.Request(ORTHANC_HTTP + path, data=body, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        data = r.read()
    try:
        return json.loads(data)
    except ValueError:
        return data


def pixels_by_sop(paths):
    out = {}
    for p in paths:
        ds = pydicom.dcmread(p)
        out[str(ds.SOPInstanceUID)] = ds.pixel_array.copy()
    return out


def store_files(data_dir):
    return sorted(f for f in glob.glob(os.path.join(data_dir, "store", "**", "*.dcm"), recursive=True)
                  if "/.incoming/" not in f)


def indexed(data_dir):
    con = sqlite3.connect(os.path.join(data_dir, "lumen.db"))
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(con.execute("SELECT sop_uid, path FROM instances").fetchall())
    finally:
        con.close()


def dciodvfy_errors(path):
    """The set of errors dciodvfy (dicom3tools) reports for a file."""
    p = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
    return {line for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error")}


def copy_with_new_uids(src_files, out_dir, copies=1):
    """Copies of a series as new studies (new Study/Series/SOP UIDs), as a PACS would hold them."""
    written = []
    for c in range(copies):
        study, series = generate_uid(), generate_uid()
        for f in src_files:
            ds = pydicom.dcmread(f)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            p = os.path.join(out_dir, f"{c:04d}-{os.path.basename(f)}")
            ds.save_as(p)
            written.append(p)
    return written


class Listener:
    """`lumen-cli listen` as a child process."""

    def __init__(self, data_dir, *args, env=None):
        self.p = subprocess.Popen([CLI, "listen", "--data-dir", data_dir, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env or ENV)
        line = self.p.stdout.readline()
        if "listening" not in line:
            raise AssertionError(f"listener did not start: {line}{self.p.stderr.read()}")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, err = self.p.communicate(timeout=60)
        if "Sanitizer" in err or "runtime error:" in err:
            raise AssertionError(f"sanitizer report from lumen-cli listen:\n{err}")
        return self.p.returncode, out

    def kill(self):
        self.p.kill()
        self.p.communicate()


def associate_request(called="LUMEN", calling="HOLDER"):
    """An A-ASSOCIATE-RQ PDU proposing Verification."""
    def item(kind, body):
        return bytes([kind, 0]) + len(body).to_bytes(2, "big") + body

    uid = lambda u: u.encode()
    pc = bytes([1, 0, 0, 0]) + item(0x30, uid("1.2.840.10008.1.1")) + item(0x40, uid("1.2.840.10008.1.2"))
    body = (b"\x00\x01\x00\x00" + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32)
            + item(0x10, uid("1.2.840.10008.3.1.1.1")) + item(0x20, pc)
            + item(0x50, item(0x51, (16384).to_bytes(4, "big"))))
    return b"\x01\x00" + len(body).to_bytes(4, "big") + body


def open_association(port, called="LUMEN", calling="HOLDER"):
    """A caller that negotiates an association (Verification) and then keeps it open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(associate_request(called, calling))
    head = s.recv(6)
    if not head or head[0] != 0x02:
        raise AssertionError(f"association not accepted: {head!r}")
    return s


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d, name):
    """A test CA: returns the path prefix (name.pem certificate, name.key key)."""
    ca = os.path.join(d, name)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out", ca + ".pem",
            "-days", "2", "-subj", f"/CN=Lumen Test {name}")
    return ca


def make_cert(d, name, ca):
    """A certificate for 127.0.0.1 signed by `ca`: returns the prefix (name.crt, name.key)."""
    p = os.path.join(d, name)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p + ".key", "-out", p + ".csr", "-subj", "/CN=127.0.0.1")
    with open(p + ".ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", p + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", p + ".crt", "-days", "2", "-extfile", p + ".ext")
    return p


def start_orthanc(name, http_port, dicom_port, extra):
    """An Orthanc with its DICOMweb plugin and a temporary configuration; returns (process, log)."""
    d = workdir(name)
    cfg = {
        "Name": "LumenTest" + name, "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC",
        "StorageDirectory": os.path.join(d, "storage"), "IndexDirectory": os.path.join(d, "index"),
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    cfg.update(extra)
    with open(os.path.join(d, "orthanc.json"), "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(d, "orthanc.log"), "w")
    proc = subprocess.Popen(["Orthanc", os.path.join(d, "orthanc.json")], stdout=log, stderr=log)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answers (401 when it wants credentials)
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError("Orthanc did not start; see " + log.name)
    return proc, log


ORTHANC = None
ORTHANC_LOG = None
SOURCE_STUDY = None


def configure_lumen():
    """A fresh configuration: Lumen's own AE title LUMEN on LUMEN_PORT, no nodes."""
    if not SAMPLE or not os.path.isdir(SAMPLE):
        raise unittest.SkipTest("no sample series")
    ENV["LUMEN_CONFIG_DIR"] = workdir("config")
    run("nodes", "local", "--aet", "LUMEN", "--port", str(LUMEN_PORT))


def setUpModule():
    global ORTHANC, ORTHANC_LOG, SOURCE_STUDY
    configure_lumen()
    ORTHANC, ORTHANC_LOG = start_orthanc("orthanc", 8042, ORTHANC_PORT, {
        "DicomModalities": {"lumen": ["LUMEN", "127.0.0.1", LUMEN_PORT]},
        "RleTransferSyntaxAccepted": False,  # a syntax the node refuses: Lumen must say so, not re-encode
    })
    for f in sorted(glob.glob(os.path.join(SAMPLE, "*"))):
        with open(f, "rb") as fh:
            http("POST", "/instances", fh.read())
    SOURCE_STUDY = str(pydicom.dcmread(sorted(glob.glob(os.path.join(SAMPLE, "*")))[0]).StudyInstanceUID)
    run("nodes", "add", "pacs", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(ORTHANC_PORT))
    run("nodes", "add", "web", "--url", ORTHANC_HTTP + "/dicom-web")


def tearDownModule():
    if ORTHANC:
        ORTHANC.terminate()
        ORTHANC.wait(timeout=30)
    if ORTHANC_LOG:
        ORTHANC_LOG.close()


def sample_files():
    return sorted(glob.glob(os.path.join(SAMPLE, "*")))


class Nodes(unittest.TestCase):
    def test_config_file_is_private_and_strict(self):
        f = os.path.join(ENV["LUMEN_CONFIG_DIR"], "nodes.json")
        self.assertEqual(os.stat(f).st_mode & 0o777, 0o600)
        listed = json.loads(run("nodes", "list", "--json").stdout)
        self.assertEqual(listed["nodes"][0]["ae_title"], "ORTHANC")
        # A misspelt setting is an error naming it, never silently without effect.
        bad = workdir("badconfig")
        with open(os.path.join(bad, "nodes.json"), "w") as fh:
            json.dump({"local": {"ae_title": "LUMEN", "allowed_ae": ["X"]}}, fh)
        env = dict(ENV, LUMEN_CONFIG_DIR=bad)
        p = subprocess.run([CLI, "nodes", "list"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn('unknown setting "allowed_ae"', p.stderr)
        with open(os.path.join(bad, "nodes.json"), "w") as fh:
            json.dump({"nodes": [{"name": "x", "ae_title": "X", "host": "h", "port": 1, "tls": {}}]}, fh)
        p = subprocess.run([CLI, "echo", "x"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("\"ca_file\" is missing", p.stderr)


class Echo(unittest.TestCase):
    def test_echo_orthanc(self):
        self.assertIn("echo ok", run("echo", "pacs").stdout)
        self.assertIn("echo ok", run("echo", f"ORTHANC@127.0.0.1:{ORTHANC_PORT}").stdout)

    def test_nobody_listening_is_a_clear_error(self):
        p = run("echo", "NOBODY@127.0.0.1:4999", "--timeout", "3", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("NOBODY@127.0.0.1:4999", p.stderr)
        self.assertRegex(p.stderr, "(?i)refused")

    def test_silent_node_times_out(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        t0 = time.time()
        p = run("echo", f"SILENT@127.0.0.1:{port}", "--timeout", "2", check=False)
        elapsed = time.time() - t0
        srv.close()
        self.assertEqual(p.returncode, 1)
        self.assertIn("no answer within 2 s", p.stderr)
        self.assertLess(elapsed, 10)

    def test_unknown_node(self):
        p = run("echo", "nosuchnode", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such node", p.stderr)


class Query(unittest.TestCase):
    def test_study_and_series_levels(self):
        studies = json.loads(run("query", "pacs", "--json").stdout)["matches"]
        mine = [s for s in studies if s["study_uid"] == SOURCE_STUDY]
        self.assertEqual(len(mine), 1)
        src = pydicom.dcmread(sample_files()[0])
        self.assertEqual(mine[0]["patient_id"], str(src.PatientID))
        self.assertEqual(mine[0]["instance_count"], len(sample_files()))
        self.assertIn("CT", mine[0]["modalities"])
        none = json.loads(run("query", "pacs", "--patient-id", "NO-SUCH-PATIENT", "--json").stdout)["matches"]
        self.assertEqual(none, [])
        series = json.loads(run("query", "pacs", "--level", "series", "--study", SOURCE_STUDY, "--json").stdout)
        self.assertEqual(len(series["matches"]), 1)
        self.assertEqual(series["matches"][0]["series_uid"], str(src.SeriesInstanceUID))
        self.assertEqual(series["matches"][0]["instance_count"], len(sample_files()))
        # Series of every matching study, without naming one.
        allseries = json.loads(run("query", "pacs", "--level", "series", "--modality", "CT", "--json").stdout)
        self.assertIn(str(src.SeriesInstanceUID), [m["series_uid"] for m in allseries["matches"]])


class Retrieve(unittest.TestCase):
    def check_voxels(self, data_dir):
        got = indexed(data_dir)
        src = pixels_by_sop(sample_files())
        self.assertEqual(set(got), set(src))
        for sop, path in got.items():
            self.assertTrue(np.array_equal(pydicom.dcmread(path).pixel_array, src[sop]), sop)

    def test_get(self):
        d = workdir("retrieve-get")
        out = json.loads(run("retrieve", "pacs", "--study", SOURCE_STUDY, "--via", "get", "--data-dir", d,
                             "--json").stdout)
        self.assertEqual(out["stored"], len(sample_files()))
        self.check_voxels(d)
        # C-GET's instances are written by Lumen (DCMTK, a new meta header): they pass
        # dciodvfy with no error their source lacks, and DCMTK reads them back.
        sources = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in sample_files()}
        for sop, path in sorted(indexed(d).items())[:3]:
            self.assertLessEqual(dciodvfy_errors(path), dciodvfy_errors(sources[sop]), path)
            self.assertEqual(subprocess.run(["dcmdump", "-q", path], capture_output=True).returncode, 0, path)
        # Again: idempotent, nothing doubled.
        run("retrieve", "pacs", "--study", SOURCE_STUDY, "--data-dir", d)
        self.assertEqual(len(indexed(d)), len(sample_files()))
        self.assertEqual(len(store_files(d)), len(sample_files()))

    def test_move(self):
        d = workdir("retrieve-move")
        out = json.loads(run("retrieve", "pacs", "--study", SOURCE_STUDY, "--via", "move", "--data-dir", d,
                             "--json").stdout)
        self.assertEqual(out["stored"], len(sample_files()))
        self.check_voxels(d)

    def test_move_to_a_running_listener_beside_it(self):
        # The listener already holds Lumen's port: retrieve --via move counts on it. Each
        # filer has its own folder for half-received files: the retrieve's must not sweep
        # away the listener's (a file stands in for one being received).
        d = workdir("retrieve-move-running")
        lis = Listener(d, "--port", str(LUMEN_PORT))
        incoming = os.path.join(d, "store", ".incoming")
        mine = os.listdir(incoming)
        self.assertEqual(len(mine), 1)
        in_flight = os.path.join(incoming, mine[0], "being-received.dcm")
        with open(in_flight, "wb") as f:
            f.write(b"partial")
        p = run("retrieve", "pacs", "--study", SOURCE_STUDY, "--via", "move", "--data-dir", d)
        self.assertIn("counting on the listener already there", p.stderr)
        self.assertTrue(os.path.exists(in_flight))
        rc, _ = lis.stop()
        self.assertEqual(rc, 0)
        self.check_voxels(d)
        self.assertEqual(os.listdir(incoming), [])  # each filer removes its folder when done

    def test_unknown_study(self):
        d = workdir("retrieve-none")
        for via in ("get", "move"):
            p = run("retrieve", "pacs", "--study", "1.2.3.4.5.6.7", "--via", via, "--data-dir", d, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no such study on the node", p.stderr)
        p = run("retrieve", "pacs", "--study", SOURCE_STUDY, "--series", "1.2.3.4.5.6.8", "--data-dir", d, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such series on the node", p.stderr)


class Send(unittest.TestCase):
    def orthanc_instance(self, sop):
        hits = http("POST", "/tools/lookup", sop.encode())
        hits = [h for h in hits if h["Type"] == "Instance"]
        self.assertEqual(len(hits), 1, sop)
        return hits[0]["ID"]

    def test_send_folder_voxel_exact(self):
        d = workdir("send-src")
        files = copy_with_new_uids(sample_files()[:8], d)
        out = json.loads(run("send", "pacs", d, "--json").stdout)
        self.assertEqual(out["sent"], 8)
        for f in files:
            ds = pydicom.dcmread(f)
            oid = self.orthanc_instance(str(ds.SOPInstanceUID))
            back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(http("GET", f"/instances/{oid}/file")))
            self.assertTrue(np.array_equal(back.pixel_array, ds.pixel_array))

    def test_compressed_files_keep_their_transfer_syntax(self):
        mixed = os.path.join(CORPUS, "mixed-series")
        if not os.path.isdir(mixed):
            self.skipTest("corpus without mixed-series")
        d = workdir("send-mixed")
        files = copy_with_new_uids(sorted(glob.glob(os.path.join(mixed, "*"))), d)
        p = run("send", "pacs", d, check=False)
        self.assertEqual(p.returncode, 1)
        syntaxes = set()
        refused = 0
        for f in files:
            ds = pydicom.dcmread(f)
            if str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.5":  # RLE, which this Orthanc refuses
                self.assertIn(f"{f}: not sent: the node does not accept CTImageStorage in RLELossless", p.stderr)
                self.assertEqual(http("POST", "/tools/lookup", str(ds.SOPInstanceUID).encode()), [])
                refused += 1
                continue
            oid = self.orthanc_instance(str(ds.SOPInstanceUID))
            ts = http("GET", f"/instances/{oid}/metadata/TransferSyntax")
            ts = ts.decode() if isinstance(ts, bytes) else ts
            src_ts = str(ds.file_meta.TransferSyntaxUID)
            if src_ts in UNCOMPRESSED:  # the node may pick any of these: same bytes, other byte order
                self.assertIn(ts, UNCOMPRESSED, f)
            else:  # compressed (and deflated) files arrive as they were: never decoded, never re-encoded
                self.assertEqual(ts, src_ts, f)
                syntaxes.add(ts)
            back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(http("GET", f"/instances/{oid}/file")))
            self.assertTrue(np.array_equal(back.pixel_array, ds.pixel_array))
        self.assertGreater(refused, 0)
        self.assertIn(f"{refused} file(s) not sent", p.stderr)
        self.assertGreaterEqual(len(syntaxes), 4)  # JPEG lossless x2, JPEG-LS, JPEG 2000, deflate

    def test_send_series_from_database(self):
        d = workdir("send-db")
        src = workdir("send-db-src")
        files = copy_with_new_uids(sample_files()[:4], src)
        run("import", src, "--data-dir", d)
        series = str(pydicom.dcmread(files[0]).SeriesInstanceUID)
        self.assertIn("sent 4", run("send", "pacs", "--series", series, "--data-dir", d).stdout)
        for f in files:
            self.orthanc_instance(str(pydicom.dcmread(f).SOPInstanceUID))

    def test_seg_from_lumen_is_accepted(self):
        """A DICOM SEG lumen-cli writes of the sample series: Orthanc takes it over C-STORE and over
        its REST API, files it under the source study, and gives back the same segment bits."""
        d = workdir("send-seg")
        # A study of its own (the sample with new UIDs): other tests count the sample study's instances.
        source = workdir("send-seg-source")
        copy_with_new_uids(sample_files(), source)
        study = str(pydicom.dcmread(sorted(glob.glob(os.path.join(source, "*")))[0]).StudyInstanceUID)
        run("convert", source, os.path.join(d, "ct.nii.gz"))
        img = nib.load(os.path.join(d, "ct.nii.gz"))
        labels = (np.asarray(img.dataobj) > 300).astype(np.uint8)  # bone
        nib.save(nib.Nifti1Image(labels, img.affine), os.path.join(d, "bone.nii.gz"))
        seg, seg2 = os.path.join(d, "seg.dcm"), os.path.join(d, "seg2.dcm")
        run("convert", os.path.join(d, "bone.nii.gz"), seg, "--reference", source)
        run("convert", os.path.join(d, "bone.nii.gz"), seg2, "--reference", source)
        ds = pydicom.dcmread(seg)
        self.assertIn("sent 1", run("send", "pacs", seg).stdout)
        oid = self.orthanc_instance(str(ds.SOPInstanceUID))
        self.assertEqual(http("GET", f"/instances/{oid}/simplified-tags")["Modality"], "SEG")
        self.assertEqual(http("GET", f"/instances/{oid}/study")["MainDicomTags"]["StudyInstanceUID"], study)
        back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(http("GET", f"/instances/{oid}/file")))
        self.assertTrue(np.array_equal(back.pixel_array, ds.pixel_array))
        with open(seg2, "rb") as fh:
            self.assertEqual(http("POST", "/instances", fh.read())["Status"], "Success")
        self.orthanc_instance(str(pydicom.dcmread(seg2).SOPInstanceUID))
        # The SR of the segment's volume, referencing the SEG: sent too.
        data = os.path.join(d, "data")
        run("import", "--data-dir", data, source, seg)
        sr = os.path.join(d, "sr.dcm")
        run("report", "--study", study, "--sr", sr, "--pdf", os.path.join(d, "report.pdf"), "--data-dir", data)
        self.assertIn("sent 1", run("send", "pacs", sr).stdout)
        oid = self.orthanc_instance(str(pydicom.dcmread(sr).SOPInstanceUID))
        self.assertEqual(http("GET", f"/instances/{oid}/simplified-tags")["Modality"], "SR")
        # The report's Encapsulated PDF, stored in the study, is sent from the database.
        doc = [f for f in glob.glob(os.path.join(data, "store", "**", "*.dcm"), recursive=True)
               if pydicom.dcmread(f, stop_before_pixels=True).Modality == "DOC"]
        self.assertEqual(len(doc), 1)
        self.assertIn("sent 1", run("send", "pacs", doc[0]).stdout)
        oid = self.orthanc_instance(str(pydicom.dcmread(doc[0]).SOPInstanceUID))
        self.assertEqual(http("GET", f"/instances/{oid}/simplified-tags")["Modality"], "DOC")

    def test_deidentified_output_is_accepted(self):
        """What lumen-cli anonymize writes is valid for a PACS: Orthanc takes it over C-STORE
        and REST and indexes the pseudonym, not the patient."""
        d = workdir("send-deid")
        key = os.path.join(d, "project.key")
        run("anonymize", "--make-key", key)
        src = workdir("send-deid-src")
        copy_with_new_uids(sample_files()[:4], src)
        out = os.path.join(d, "out")
        run("anonymize", src, out, "--key", key)
        files = sorted(glob.glob(os.path.join(out, "**", "*.dcm"), recursive=True))
        self.assertEqual(len(files), 4)
        original = pydicom.dcmread(sorted(glob.glob(os.path.join(src, "*")))[0])
        self.assertIn("sent 3", run("send", "pacs", *files[:3]).stdout)
        with open(files[3], "rb") as fh:
            self.assertEqual(http("POST", "/instances", fh.read())["Status"], "Success")
        for f in files:
            ds = pydicom.dcmread(f)
            tags = http("GET", f"/instances/{self.orthanc_instance(str(ds.SOPInstanceUID))}/simplified-tags")
            self.assertEqual(tags["PatientName"], str(ds.PatientName))
            self.assertNotEqual(tags["PatientName"], str(original.PatientName))
            self.assertNotEqual(tags["PatientID"], str(original.PatientID))
            self.assertEqual(tags["PatientIdentityRemoved"], "YES")
            self.assertNotEqual(tags["StudyInstanceUID"], str(original.StudyInstanceUID))

    def test_send_compressed_losslessly(self):
        """send --compress: the node receives JPEG-LS (or JPEG 2000) and decodes the same pixels."""
        for syntax, uid in (("jpeg-ls", "1.2.840.10008.1.2.4.80"), ("jpeg2000", "1.2.840.10008.1.2.4.90")):
            src = workdir("send-compress-" + syntax)
            files = copy_with_new_uids(sample_files()[:3], src)
            self.assertIn("sent 3", run("send", "pacs", src, "--compress", syntax).stdout)
            for f in files:
                ds = pydicom.dcmread(f)
                oid = self.orthanc_instance(str(ds.SOPInstanceUID))
                ts = http("GET", f"/instances/{oid}/metadata/TransferSyntax")
                self.assertEqual(ts.decode() if isinstance(ts, bytes) else ts, uid)
                back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(http("GET", f"/instances/{oid}/file")))
                self.assertTrue(np.array_equal(back.pixel_array, ds.pixel_array), f)
        p = run("send", "pacs", workdir("send-compress-bad"), "--compress", "zip", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--compress must be", p.stderr)

    def test_refused_file_is_reported(self):
        d = workdir("send-bad")
        shutil.copy(sample_files()[0], d)
        with open(os.path.join(d, "not-dicom.dcm"), "w") as fh:
            fh.write("hello")
        p = run("send", "pacs", d, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not-dicom.dcm", p.stderr)
        self.assertIn("sent 1", p.stdout)


if __name__ == "__main__":
    unittest.main()
