#!/usr/bin/python3
"""lumen-cli batch against a real PACS (Orthanc) and a real scheduler (a single-node
Slurm: munged, slurmctld, slurmd, started here), all inside tests/app/netns.sh's private
network namespace. Orthanc holds 8 small studies; a 4-task array segments them all, one
task is cancelled (scancel) while it works, and the batch is run again: every study then
has exactly one SEG and one SR in Orthanc, the job database agrees, and the results table
is complete.
"""
import csv
import glob
import io
import json
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

import pydicom

import test_net as net

MODELS = os.environ.get("LUMEN_TEST_MODELS", "")
MODEL = "monai_probabilities"  # a test bundle: segmentation of any volume, in seconds
STUDIES = []
SLURM = None


class Slurm:
    """A one-node Slurm cluster in a folder: munge for authentication, controller and node
    daemon as root, listening on loopback only."""

    def __init__(self, d):
        self.d = d
        for sub in ("state", "spool", "log"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        key = os.path.join(d, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o600)
        self.sock = os.path.join(d, "munge.sock")
        subprocess.run(["munged", "--key-file=" + key, "--socket=" + self.sock, "--pid-file=" + os.path.join(d, "munged.pid"),
                        "--log-file=" + os.path.join(d, "log", "munged.log"), "--seed-file=" + os.path.join(d, "munge.seed"),
                        "-f"], check=True, capture_output=True)
        self.conf = os.path.join(d, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=lumentest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket={self.sock}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=lumen Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
""")
        net.ENV["SLURM_CONF"] = self.conf
        subprocess.run(["slurmctld", "-c", "-f", self.conf], check=True, env=net.ENV, capture_output=True)
        subprocess.run(["slurmd", "-N", "localhost", "-f", self.conf], check=True, env=net.ENV, capture_output=True)
        for _ in range(100):
            p = subprocess.run(["sinfo", "-h", "-o", "%T"], env=net.ENV, capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip() in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.2)
        raise AssertionError("Slurm did not come up: " + open(os.path.join(d, "log", "slurmctld.log")).read()[-2000:])

    def queue(self, job):
        p = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], env=net.ENV, capture_output=True, text=True)
        return [line.split() for line in p.stdout.splitlines() if line.strip()]

    def stop(self):
        for name in ("slurmd", "slurmctld", "munged"):
            try:
                with open(os.path.join(self.d, name + ".pid")) as f:
                    os.kill(int(f.read().strip()), 15)
            except (OSError, ValueError):
                pass


def setUpModule():
    global SLURM
    for tool in ("slurmctld", "slurmd", "sbatch", "munged", "Orthanc"):
        if shutil.which(tool) is None:
            raise unittest.SkipTest(f"{tool} is not installed (packaging/install-deps.sh)")
    if not MODELS or not os.path.isdir(os.path.join(MODELS, MODEL)):
        raise unittest.SkipTest("no test model bundles (ctest fixture models_setup)")
    # Slurm resolves its hosts with AI_ADDRCONFIG: the namespace needs an address besides
    # loopback's own (on lo: still nothing outside can reach it).
    subprocess.run(["ip", "addr", "add", "10.254.0.1/32", "dev", "lo"], check=True)
    net.ENV["LUMEN_CONFIG_DIR"] = net.workdir("batch-config")
    net.ENV["LUMEN_MODEL_PATH"] = MODELS
    net.ENV["LUMEN_DATA_DIR"] = net.workdir("batch-default-data")
    net.ORTHANC, net.ORTHANC_LOG = net.start_orthanc("batch-orthanc", 8042, net.ORTHANC_PORT, {})
    src = sorted(glob.glob(os.path.join(net.CORPUS, "phantom", "box", "*")))
    copies = net.copy_with_new_uids(src, net.workdir("batch-studies"), copies=8)
    for f in copies:
        with open(f, "rb") as fh:
            net.http("POST", "/instances", fh.read())
    for f in copies[:: len(src)]:
        STUDIES.append(str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID))
    net.run("nodes", "add", "pacs", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(net.ORTHANC_PORT))
    for model in (MODEL, "classifier2d", "gui_enhance", "grader2d"):
        net.run("models", "--trust", model)
    SLURM = Slurm(net.workdir("slurm"))


def tearDownModule():
    if SLURM:
        SLURM.stop()
    if net.ORTHANC:
        net.ORTHANC.terminate()
        net.ORTHANC.wait(timeout=30)
        net.ORTHANC_LOG.close()


def results_in_orthanc(study_uid):
    """Modality -> [instances per series] of Lumen's results in Orthanc's copy of the study."""
    found = net.http("POST", "/tools/lookup", study_uid.encode())
    out = {}
    for series_id in net.http("GET", f"/studies/{found[0]['ID']}")["Series"]:
        s = net.http("GET", f"/series/{series_id}")
        out.setdefault(s["MainDicomTags"].get("Modality", ""), []).append(len(s["Instances"]))
    return out


def jobs(work):
    con = sqlite3.connect(os.path.join(work, "batch.db"))
    rows = con.execute("SELECT study_uid, status, attempts, owner, last_error FROM studies ORDER BY position").fetchall()
    con.close()
    return rows


class Batch(unittest.TestCase):

    def test_a_slurm_array_cancelled_midway_and_run_again(self):
        work = net.workdir("batch-slurm")
        ids = os.path.join(work, "studies.txt")
        with open(ids, "w") as f:
            f.write("\n".join(STUDIES) + "\n")
        p = net.run("batch", "run", "--work", work, "--node", "pacs", "-m", MODEL, "--studies", ids, "--slurm",
                    "--workers", "4")
        job = p.stdout.split()[2].rstrip(":")
        self.assertTrue(job.isdigit(), p.stdout)
        with open(os.path.join(work, "batch.sbatch")) as f:
            self.assertIn("--array=1-4", f.read())
        # Cancel task 2 while it works on a study.
        deadline = time.time() + 240
        while time.time() < deadline:
            if any(status == "running" and owner.endswith("task 2") for _, status, _, owner, _ in jobs(work)):
                break
            time.sleep(0.1)
        else:
            self.fail("task 2 never started: " + repr(jobs(work)))
        subprocess.run(["scancel", f"{job}_2"], env=net.ENV, check=True)
        while SLURM.queue(job) and time.time() < deadline + 300:
            time.sleep(0.5)
        self.assertEqual(SLURM.queue(job), [])
        after = jobs(work)
        interrupted = [uid for uid, status, _, owner, _ in after if status == "running"]
        self.assertEqual(len(interrupted), 1, after)  # the study task 2 was working on, left running
        self.assertLess(sum(status == "done" for _, status, *_ in after), 8)
        status = json.loads(net.run("batch", "status", "--work", work, "--json").stdout)
        self.assertEqual(status["counts"].get("running"), 1)
        self.assertFalse(status["slurm_active"])
        # A different batch in the same folder is refused, not silently mixed in.
        q = net.run("batch", "run", "--work", work, "-m", "other_model", check=False)
        self.assertEqual(q.returncode, 1)
        self.assertIn("this work folder is a batch with --model " + MODEL, q.stderr)
        # Run again: only what is not done, then everything is.
        p = net.run("batch", "run", "--work", work, "--slurm", "--workers", "4", "--wait", timeout=600)
        self.assertIn("0 new studies, 1 interrupted one(s) to do again", p.stderr)
        self.assertIn("8 studies: 8 done, 0 failed", p.stdout)
        final = jobs(work)
        self.assertEqual([s for _, s, *_ in final], ["done"] * 8)
        redone = [a for uid, _, a, _, _ in final if uid in interrupted]
        self.assertEqual(redone, [2])  # claimed once by the cancelled task, once again
        for uid in STUDIES:
            r = results_in_orthanc(uid)
            self.assertEqual(r.get("SEG"), [1], f"{uid}: {r}")  # exactly one SEG, one instance
            self.assertEqual(r.get("SR"), [1], f"{uid}: {r}")
            self.assertEqual(r.get("CT"), [24], f"{uid}: {r}")
        with open(os.path.join(work, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(sorted(r["study_uid"] for r in rows), sorted(STUDIES))
        for r in rows:
            self.assertEqual(r["status"], "done")
            self.assertIn(MODEL + ":", r["volumes_ml"])
            self.assertGreater(float(r["total_s"]), 0)
        with open(os.path.join(work, "results.json")) as f:
            results = json.load(f)
        self.assertEqual(len(results), 8)
        self.assertTrue(all(x["result"]["sent"] == 2 for x in results))
        # The SR references the SEG that was sent (deterministic UIDs: a re-made SEG is the same one).
        d = os.path.join(work, "results", STUDIES[0])
        seg = pydicom.dcmread(os.path.join(d, MODEL + "-seg.dcm"))
        sr = pydicom.dcmread(os.path.join(d, "report-sr.dcm"))
        refs = [i.ReferencedSOPInstanceUID for s in sr.CurrentRequestedProcedureEvidenceSequence
                for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence]
        self.assertIn(seg.SOPInstanceUID, refs)

    def test_local_workers_and_a_rerun_that_skips_what_is_done(self):
        work = net.workdir("batch-local")
        p = net.run("batch", "run", "--work", work, "--node", "pacs", "-m", MODEL, "--study", STUDIES[0],
                    "--study", STUDIES[1], "--workers", "2", "--no-send", timeout=600)
        self.assertIn("2 studies: 2 done, 0 failed", p.stdout)
        p = net.run("batch", "run", "--work", work, "--workers", "2", timeout=600)
        self.assertIn("0 new studies", p.stderr)
        self.assertEqual([a for _, _, a, _, _ in jobs(work)], [1, 1])  # nothing done twice
        # A study the node does not have fails with its reason, retried up to --retries.
        work2 = net.workdir("batch-missing")
        p = net.run("batch", "run", "--work", work2, "--node", "pacs", "-m", MODEL, "--study", "1.2.3.4.5.6",
                    "--retries", "1", "--no-send", check=False, timeout=600)
        self.assertEqual(p.returncode, 1)
        (uid, status, attempts, _, error), = jobs(work2)
        self.assertEqual((status, attempts), ("failed", 2))
        self.assertIn("no image series", error)
        # Models nobody trusted are refused up front, by name; so are conditions that cannot hold.
        p = net.run("batch", "run", "--work", net.workdir("batch-refused"), "--node", "pacs", "-m", "conv3d",
                    "--study", STUDIES[0], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--model conv3d: not trusted", p.stderr)
        for when, why in [("gui_enhance:classifier2d=maybe", "classifier2d has no class maybe (its classes: no, yes)"),
                          ("classifier2d:gui_enhance=yes", "gui_enhance must be a classification --model before"),
                          ("gui_enhance=yes", "expected MODEL:CLASSIFIER=CLASS")]:
            p = net.run("batch", "run", "--work", net.workdir("batch-refused-when"), "--node", "pacs", "-m",
                        "classifier2d", "-m", "gui_enhance", "--when", when, "--study", STUDIES[0], check=False)
            self.assertEqual(p.returncode, 1, when)
            self.assertIn(why, p.stderr)

    def test_c_a_pipeline_with_a_condition_sends_a_derived_series(self):
        """Grade, then enhance only what the grader picked: of two batches whose conditions
        are opposite, exactly one makes and sends the derived series. Runs after test_a,
        which counts every study's CT series in Orthanc."""
        study = STUDIES[2]
        made = []
        for cls in ("yes", "no"):
            work = net.workdir("batch-when-" + cls)
            keep = ["--keep-images"] if cls == "yes" else []
            p = net.run("batch", "run", "--work", work, "--node", "pacs", "-m", "classifier2d", "-m", "gui_enhance",
                        "--when", "gui_enhance:classifier2d=" + cls, "--study", study, *keep, timeout=600)
            self.assertIn("1 studies: 1 done, 0 failed", p.stdout)
            # The retrieved images are removed once the results are made, unless kept.
            con = sqlite3.connect(os.path.join(work, "data", "lumen.db"))
            ct = con.execute("SELECT COUNT(*) FROM instances i JOIN series s ON i.series_ref = s.id "
                             "WHERE s.series_uid IN (SELECT series_uid FROM series WHERE modality = 'CT')").fetchone()[0]
            con.close()
            stored = [f for f in glob.glob(os.path.join(work, "data", "store", "**", "*.dcm"), recursive=True)]
            if keep:
                self.assertGreaterEqual(ct, 24)
                self.assertGreaterEqual(len(stored), 24)
            else:
                self.assertEqual((ct, stored), (0, []))
            with open(os.path.join(work, "results.json")) as f:
                (row,) = json.load(f)
            steps = row["result"]["models"]
            predicted = steps["classifier2d"]["predicted"]
            if predicted == cls:
                self.assertEqual(steps["gui_enhance"]["instances"], 24)
                self.assertEqual(row["result"]["sent"], 24 + 1)  # the derived series and the SR
                self.assertIn("gui_enhance-series/", row["result"]["outputs"])
                made.append(steps["gui_enhance"]["derived_series_uid"])
            else:
                self.assertEqual(steps["gui_enhance"], {"task": "enhancement", "skipped": "classifier2d predicted " + predicted})
                self.assertEqual(row["result"]["sent"], 1)
            with open(os.path.join(work, "results.csv")) as f:
                (line,) = list(csv.DictReader(f))
            if predicted == cls:
                self.assertEqual(line["derived_series"], "gui_enhance=" + made[-1])
                self.assertEqual(line["skipped"], "")
            else:
                self.assertEqual(line["derived_series"], "")
                self.assertEqual(line["skipped"], "gui_enhance (classifier2d predicted " + predicted + ")")
            # Run again: nothing done twice, nothing sent twice.
            p = net.run("batch", "run", "--work", work, timeout=600)
            self.assertIn("0 new studies", p.stderr)
            self.assertEqual([a for _, _, a, _, _ in jobs(work)], [1])
        self.assertEqual(len(made), 1)
        # In the PACS: the derived series beside the original, each instance naming its source.
        found = net.http("POST", "/tools/lookup", made[0].encode())
        series = net.http("GET", f"/series/{found[0]['ID']}")
        self.assertEqual(len(series["Instances"]), 24)
        self.assertEqual(results_in_orthanc(study).get("CT"), [24, 24])
        derived = pydicom.dcmread(io.BytesIO(net.http("GET", f"/instances/{series['Instances'][0]}/file")))
        self.assertEqual(list(derived.ImageType)[:2], ["DERIVED", "SECONDARY"])
        source_id = net.http("POST", "/tools/lookup", derived.SourceImageSequence[0].ReferencedSOPInstanceUID.encode())
        source = pydicom.dcmread(io.BytesIO(net.http("GET", f"/instances/{source_id[0]['ID']}/file")))
        self.assertEqual(derived.ImagePositionPatient, source.ImagePositionPatient)
        hu = derived.pixel_array * float(derived.RescaleSlope) + float(derived.RescaleIntercept)
        hu_src = source.pixel_array * float(source.RescaleSlope) + float(source.RescaleIntercept)
        self.assertLessEqual(abs(hu - hu_src).max(), 1.0)  # an identity model

    def test_d_a_grader_that_gives_no_class_runs_no_follow_up(self):
        """grader2d reads the phantom's slices far above the 3-30 it knows: no class, so the
        step that waits for one is skipped, and the results say why."""
        work = net.workdir("batch-not-graded")
        p = net.run("batch", "run", "--work", work, "--node", "pacs", "-m", "grader2d", "-m", "gui_enhance",
                    "--when", "gui_enhance:grader2d=10", "--study", STUDIES[3], "--no-send", timeout=600)
        self.assertIn("1 studies: 1 done, 0 failed", p.stdout)
        with open(os.path.join(work, "results.json")) as f:
            (row,) = json.load(f)
        steps = row["result"]["models"]
        self.assertIsNone(steps["grader2d"]["predicted"])
        self.assertTrue(steps["grader2d"]["detail"].startswith("not graded: outside the range the model knows"))
        self.assertEqual(steps["gui_enhance"], {"task": "enhancement", "skipped": "grader2d gave no class"})
        with open(os.path.join(work, "results.csv")) as f:
            (line,) = list(csv.DictReader(f))
        self.assertEqual(line["predictions"], "grader2d=not graded")
        self.assertEqual(line["skipped"], "gui_enhance (grader2d gave no class)")


if __name__ == "__main__":
    unittest.main()
