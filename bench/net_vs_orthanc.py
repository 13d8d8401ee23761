#!/usr/bin/python3
"""Benchmark: DICOM networking, Lumen side by side with Orthanc and dcmtk, in one session.

usage (as root: it runs in private network and mount namespaces, nothing else can reach
the servers):
  tests/app/netns.sh /usr/bin/python3 bench/net_vs_orthanc.py [--cli build/dev/app/lumen-cli]
        [--series ../shared/data/ct-head-sinus] [--instances 1000] [--runs 3]
        [--wado-only | --receive-only] [--baseline-cli OTHER-BUILD/lumen-cli]

1. Reception: `--instances` copies of the real CT's slices (new Study/Series/SOP UIDs)
   sent by 4 concurrent storescu processes (one association each) to `lumen-cli listen`
   and to Orthanc (DicomThreadsCount 4), alternating, fresh storage each run. Counted:
   instances in the index afterwards (0 lost), wall time from the first association to
   the last response, instances per second.
2. Retrieve of the real series from an Orthanc holding it: Lumen's C-GET vs dcmtk's
   getscu, and Lumen's WADO-RS vs curl downloading the same WADO-RS response to one file
   (and the same followed by `sync`), alternating, fresh destination each run.
3. The workstation during a retrieve: `lumen --benchmark-retrieve NODE STUDY` (under
   xvfb-run, Mesa's software OpenGL) retrieves the same series by C-GET and by WADO-RS into
   an empty database, opens it as soon as the browser lists it, and prints when its first
   picture was drawn, when the retrieve ended and when the whole series was on screen.

--receive-only runs only part 1; --wado-only runs only the command-line WADO-RS retrieves of part 2; --baseline-cli times
another build's `lumen-cli retrieve` in the same rounds, so that a change is measured side
by side with what it replaces.

Lumen acknowledges an instance only once it is fsynced, renamed and committed to its
database; Orthanc and getscu write without fsync and curl writes one file: the ratios
include that difference, which is the point of the promise.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request

import pydicom
from pydicom.uid import generate_uid

ORTHANC_HTTP = "http://127.0.0.1:8042"


def http(path, method="GET", body=None):
    req = urllib.request.Request(ORTHANC_HTTP + path, data=body, method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        data = r.read()
    return json.loads(data) if data[:1] in (b"{", b"[") else data


def start_orthanc(storage):
    cfg = {
        "Name": "bench", "HttpPort": 8042, "DicomPort": 4242, "DicomAet": "ORTHANC",
        "StorageDirectory": storage, "IndexDirectory": storage, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomThreadsCount": 4, "SaveJobs": False,
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    os.makedirs(storage, exist_ok=True)
    path = os.path.join(storage, "orthanc.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen(["Orthanc", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            http("/system")
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("Orthanc did not start")


def stop(p):
    """Stops a server; returns the CPU seconds (user + system) it used."""
    p.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(p.pid, 0)
    p.returncode = 0
    return usage.ru_utime + usage.ru_stime


def make_load(series, n, out):
    """n instances: the series' slices again and again, each copy a new study."""
    src = sorted(glob.glob(os.path.join(series, "*")))
    folders = [os.path.join(out, f"a{i}") for i in range(4)]
    for f in folders:
        os.makedirs(f)
    written = 0
    while written < n:
        study, ser = generate_uid(), generate_uid()
        for f in src:
            if written == n:
                break
            ds = pydicom.dcmread(f)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, ser
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(os.path.join(folders[written % 4], f"{written:05d}.dcm"))
            written += 1
    return folders


def send_parallel(folders, port, aet):
    subprocess.run(["sync"])
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["storescu", "-aec", aet, "+sd", "127.0.0.1", str(port), f],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for f in folders]
    errs = [p.communicate()[1] for p in procs]
    dt = time.perf_counter() - t0
    bad = [e for p, e in zip(procs, errs) if p.returncode != 0]
    if bad:
        raise SystemExit("storescu failed: " + bad[0][-500:])
    return dt


def receive_lumen(cli, folders, n, work, env):
    data = os.path.join(work, "lumen-data")
    shutil.rmtree(data, ignore_errors=True)
    lis = subprocess.Popen([cli, "listen", "--data-dir", data, "--port", "11112", "--min-free-mb", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if "listening" not in lis.stdout.readline():
        raise SystemExit("lumen-cli listen did not start: " + lis.stderr.read())
    dt = send_parallel(folders, 11112, "LUMEN")
    lis.stdout.close()
    lis.stderr.close()
    cpu = stop(lis)
    con = sqlite3.connect(os.path.join(data, "lumen.db"))
    count = con.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    con.close()
    return dt, count, cpu


def receive_orthanc(folders, n, work):
    storage = os.path.join(work, "orthanc-recv")
    shutil.rmtree(storage, ignore_errors=True)
    p = start_orthanc(storage)
    try:
        dt = send_parallel(folders, 4242, "ORTHANC")
        count = http("/statistics")["CountInstances"]
    finally:
        cpu = stop(p)
    return dt, count, cpu


def cpu_seconds(pid):
    """User + system CPU a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Orthanc 1.10 builds the same WADO-RS response (every attachment from its cache, the same
# log) with either about 0.04 s or about 0.6 s of its own CPU, run by run, neither
# predictable nor under the client's control: a client's run is compared with the other
# clients' runs in which Orthanc did the same.
ORTHANC_SLOW_CPU = 0.2


def timed(cmd, env=None):
    subprocess.run(["sync"])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stdout[-300:]}{p.stderr[-500:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default="build/dev/app/lumen-cli")
    ap.add_argument("--series", default="../shared/data/ct-head-sinus")
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lumen", help="the GUI (default: next to --cli)")
    ap.add_argument("--skip-receive", action="store_true", help="only the retrieve measurements")
    ap.add_argument("--receive-only", action="store_true", help="only the reception measurements")
    ap.add_argument("--wado-only", action="store_true",
                    help="only the command-line WADO-RS retrieves (no reception, C-GET or GUI)")
    ap.add_argument("--baseline-cli", help="another lumen-cli (an earlier build) timed by WADO-RS in the same rounds")
    a = ap.parse_args()
    cli = os.path.abspath(a.cli)
    series = os.path.abspath(a.series)
    work = tempfile.mkdtemp(prefix="lumen-net-bench-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    env = dict(os.environ, LUMEN_CONFIG_DIR=os.path.join(work, "config"))
    try:
        lumen = os.path.abspath(a.lumen or os.path.join(os.path.dirname(cli), "lumen"))
        if a.skip_receive or a.wado_only:
            a.instances = 0
        print(f"making {a.instances} instances from {series} ...", flush=True)
        folders = make_load(series, a.instances, os.path.join(work, "load"))
        rows = {"lumen": [], "orthanc": []}
        cpus = {"lumen": [], "orthanc": []}
        for r in range(a.runs if a.instances else 0):
            for name in (("lumen", "orthanc") if r % 2 == 0 else ("orthanc", "lumen")):
                dt, count, cpu = (receive_lumen(cli, folders, a.instances, work, env) if name == "lumen"
                             else receive_orthanc(folders, a.instances, work))
                print(f"  receive run {r + 1} {name}: {dt:.2f} s, {count} instances indexed, server CPU {cpu:.2f} s",
                      flush=True)
                if count != a.instances:
                    raise SystemExit(f"{name} lost instances: {count} of {a.instances}")
                rows[name].append(dt)
                cpus[name].append(cpu)
        lm = statistics.median(rows["lumen"]) if rows["lumen"] else 0
        om = statistics.median(rows["orthanc"]) if rows["orthanc"] else 0
        if a.instances:
            print(f"RECEIVE {a.instances} instances, 4 associations: Lumen {lm:.2f} s ({a.instances / lm:.0f}/s), "
              f"Orthanc {om:.2f} s ({a.instances / om:.0f}/s); Lumen/Orthanc throughput {om / lm:.2f}x; server CPU "
              f"Lumen {statistics.median(cpus['lumen']):.2f} s, Orthanc {statistics.median(cpus['orthanc']):.2f} s",
              flush=True)
        if a.receive_only:
            return

        # Retrieve: an Orthanc holding the real series.
        storage = os.path.join(work, "orthanc-pacs")
        p = start_orthanc(storage)
        try:
            files = sorted(glob.glob(os.path.join(series, "*")))
            for f in files:
                with open(f, "rb") as fh:
                    http("/instances", "POST", fh.read())
            study = str(pydicom.dcmread(files[0]).StudyInstanceUID)
            subprocess.run([cli, "nodes", "add", "pacs", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", "4242"],
                           env=env, check=True, capture_output=True)
            subprocess.run([cli, "nodes", "add", "web", "--url", ORTHANC_HTTP + "/dicom-web"], env=env, check=True,
                           capture_output=True)
            accept = 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*'
            cases = {
                "lumen get": lambda d: [cli, "retrieve", "pacs", "--study", study, "--via", "get", "--data-dir", d],
                "getscu": lambda d: ["getscu", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY", "-k",
                                     f"StudyInstanceUID={study}", "-od", d, "127.0.0.1", "4242"],
                "lumen wado": lambda d: [cli, "retrieve", "web", "--study", study, "--data-dir", d],
                "curl wado": lambda d: ["curl", "-sf", "-H", accept, "-o", os.path.join(d, "study.multipart"),
                                        f"{ORTHANC_HTTP}/dicom-web/studies/{study}"],
                # The same download made durable, as Lumen's is before it reports done.
                "curl wado + sync": lambda d: ["sh", "-c", f"curl -sf -H '{accept}' -o {d}/study.multipart "
                                               f"{ORTHANC_HTTP}/dicom-web/studies/{study} && sync"],
            }
            if a.baseline_cli:
                base = os.path.abspath(a.baseline_cli)
                cases["baseline wado"] = lambda d: [base, "retrieve", "web", "--study", study, "--data-dir", d]
            if a.wado_only:
                cases = {k: v for k, v in cases.items() if "wado" in k}
            times = {k: [] for k in cases}
            server = {k: [] for k in cases}  # Orthanc's CPU during each timed run
            names = list(cases)
            for r in range(a.runs + 1):  # the first round warms Orthanc's cache, untimed
                # Each round in another order: a case never always follows the same one (whose
                # unflushed or deleted files the disk is still busy with).
                for k in names[r % len(names):] + names[:r % len(names)]:
                    make = cases[k]
                    # A new folder each run, all removed at the end: files deleted seconds
                    # before make a journal-less ext4 (this machine's) skip their inodes when
                    # it allocates new ones, a cost that falls on 163 files and not on one.
                    d = os.path.join(work, "dest", f"{k.replace(' ', '-')}-{r}")
                    os.makedirs(d)
                    c0 = cpu_seconds(p.pid)
                    dt = timed(make(d), env)
                    if r:
                        times[k].append(dt)
                        server[k].append(cpu_seconds(p.pid) - c0)
            med = {k: statistics.median(v) for k, v in times.items()}
            for slow in (False, True):
                by = {k: [t for t, c in zip(times[k], server[k]) if (c >= ORTHANC_SLOW_CPU) == slow]
                      for k in cases if "wado" in k}
                if all(by.values()):
                    print(f"WADO-RS runs in which Orthanc used {'>=' if slow else '<'} {ORTHANC_SLOW_CPU} s of CPU: " +
                          ", ".join(f"{k} {statistics.median(v):.2f} s (n={len(v)})" for k, v in by.items()) +
                          f"; Lumen/curl {statistics.median(by['lumen wado']) / statistics.median(by['curl wado']):.2f}, "
                          f"Lumen/(curl + sync) "
                          f"{statistics.median(by['lumen wado']) / statistics.median(by['curl wado + sync']):.2f}",
                          flush=True)
            n = len(files)
            if "baseline wado" in med:
                print(f"BASELINE WADO-RS {med['baseline wado']:.2f} s (ratio to curl {med['baseline wado'] / med['curl wado']:.2f}, "
                      f"to curl + sync {med['baseline wado'] / med['curl wado + sync']:.2f}); this build "
                      f"{med['lumen wado']:.2f} s", flush=True)
            if a.wado_only:
                print(f"RETRIEVE {n} instances: Lumen WADO-RS {med['lumen wado']:.2f} s, curl {med['curl wado']:.2f} s "
                      f"(ratio {med['lumen wado'] / med['curl wado']:.2f}), curl + sync {med['curl wado + sync']:.2f} s "
                      f"(ratio {med['lumen wado'] / med['curl wado + sync']:.2f})", flush=True)
                return
            print(f"RETRIEVE {n} instances: Lumen C-GET {med['lumen get']:.2f} s, getscu {med['getscu']:.2f} s "
                  f"(ratio {med['lumen get'] / med['getscu']:.2f}); Lumen WADO-RS {med['lumen wado']:.2f} s, curl "
                  f"{med['curl wado']:.2f} s (ratio {med['lumen wado'] / med['curl wado']:.2f}), curl + sync "
                  f"{med['curl wado + sync']:.2f} s (ratio {med['lumen wado'] / med['curl wado + sync']:.2f})",
                  flush=True)
            gui_env = dict(env, QT_QPA_PLATFORM="xcb", LIBGL_ALWAYS_SOFTWARE="1")
            for node in ("pacs", "web"):
                got = []
                for r in range(a.runs):
                    d = os.path.join(work, f"gui-{node}-{r}")
                    out = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", lumen, "--no-settings",
                                          "--data-dir", d, "--benchmark-retrieve", node, study], env=gui_env,
                                         capture_output=True, text=True, timeout=300)
                    line = [x for x in out.stdout.splitlines() if x.startswith("retrieve_first_image_s=")]
                    if out.returncode != 0 or not line:
                        raise SystemExit(f"lumen --benchmark-retrieve {node} failed: {out.stderr[-2000:]}")
                    vals = dict(kv.split("=") for kv in line[0].split())
                    got.append(vals)
                    print(f"  GUI {node} run {r + 1}: {line[0]}", flush=True)
                m = {k: statistics.median(float(g[k]) for g in got)
                     for k in ("retrieve_first_image_s", "retrieve_done_s", "series_complete_s")}
                print(f"GUI RETRIEVE {n} instances via {'C-GET' if node == 'pacs' else 'WADO-RS'}: first image "
                      f"{m['retrieve_first_image_s']:.2f} s, retrieve done {m['retrieve_done_s']:.2f} s, whole series "
                      f"on screen {m['series_complete_s']:.2f} s", flush=True)
        finally:
            stop(p)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
