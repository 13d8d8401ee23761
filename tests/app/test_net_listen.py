#!/usr/bin/python3
"""Lumen's storage listener (lumen-cli listen) against dcmtk's storescu and raw sockets: the
allow-list, limits on callers, slow and silent callers, a full disk and kill -9
mid-transfer. Run with test_net (same environment, same namespaces: tests/app/netns.sh);
its helpers are shared from there.
"""
import json
import os
import socket
import subprocess
import time
import unittest

import numpy as np
import pydicom

import test_net as net
from test_net import (CLI, ENV, SAMPLE, Listener, associate_request, copy_with_new_uids, indexed, open_association,
                      pixels_by_sop, run, sample_files, store_files, workdir)


def setUpModule():
    net.configure_lumen()  # no Orthanc: storescu and raw sockets are the callers


class Listen(unittest.TestCase):
    def storescu(self, folder, port, *args, check=True):
        p = subprocess.run(["storescu", "+sd", "+r", "-aec", "LUMEN", *args, "127.0.0.1", str(port), folder],
                           capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"storescu failed: {p.stderr}")
        return p

    def test_storescu_series_is_filed_voxel_exact(self):
        d = workdir("listen")
        lis = Listener(d, "--port", "11120")
        self.storescu(SAMPLE, 11120)
        self.storescu(SAMPLE, 11120)  # again: duplicates are idempotent
        rc, out = lis.stop()
        self.assertEqual(rc, 0)
        got = indexed(d)
        src = pixels_by_sop(sample_files())
        self.assertEqual(set(got), set(src))
        for sop, path in got.items():
            self.assertTrue(np.array_equal(pydicom.dcmread(path).pixel_array, src[sop]))
        self.assertEqual(len(store_files(d)), len(src))
        # And the browser's view of the database: `lumen-cli list` sees the study.
        listed = json.loads(run("list", "--data-dir", d, "--json").stdout)
        self.assertEqual(listed["patients"][0]["studies"][0]["instance_count"], len(src))

    def test_allow_list_rejects_unknown_callers(self):
        d = workdir("listen-allow")
        lis = Listener(d, "--port", "11121", "--allow", "ORTHANC,MODALITY1")
        p = self.storescu(SAMPLE, 11121, "-aet", "STRANGER", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, "(?i)reject")
        self.storescu(SAMPLE, 11121, "-aet", "MODALITY1")
        lis.stop()
        self.assertEqual(len(indexed(d)), len(sample_files()))

    def test_association_limit(self):
        cfg = workdir("listen-limit-config")
        with open(os.path.join(cfg, "nodes.json"), "w") as f:
            json.dump({"local": {"ae_title": "LUMEN", "max_associations": 2}}, f)
        lis = Listener(workdir("listen-limit"), "--port", "11125", env=dict(ENV, LUMEN_CONFIG_DIR=cfg))
        held = [open_association(11125) for _ in range(2)]  # two callers that stay
        p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.1", "11125"], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Local Limit Exceeded", p.stderr)
        for s in held:
            s.close()
        time.sleep(1)  # the workers see their peers gone
        p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.1", "11125"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lis.stop()

    def test_listens_only_on_the_configured_address(self):
        # All of 127/8 reaches this machine: a listener bound to 127.0.0.1 must not answer
        # on 127.0.0.2, as one on every interface would.
        lis = Listener(workdir("listen-bind"), "--port", "11126", "--bind", "127.0.0.1")
        p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.2", "11126"], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Connection refused", p.stderr)
        p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.1", "11126"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(lis.stop()[0], 0)
        p = subprocess.run([CLI, "listen", "--bind", "localhost", "--data-dir", workdir("listen-bind2")],
                           capture_output=True, text=True, env=ENV, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--bind localhost: not an IPv4 address", p.stderr)
        cfg = workdir("listen-bind-config")
        env = dict(ENV, LUMEN_CONFIG_DIR=cfg)
        subprocess.run([CLI, "nodes", "local", "--bind", "127.0.0.1"], check=True, capture_output=True, env=env)
        listed = json.loads(subprocess.run([CLI, "nodes", "list", "--json"], check=True, capture_output=True,
                                           text=True, env=env).stdout)
        self.assertEqual(listed["local"]["bind_address"], "127.0.0.1")

    def test_many_associations_leave_nothing_behind(self):
        # Each association runs on a thread of its own; a thread never joined keeps its
        # stack mapped (DCMTK's own pool did: two mappings per association, until a
        # listener that had served ~32000 refused everything).
        lis = Listener(workdir("listen-many"), "--port", "11127")

        def echo():
            p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.1", "11127"], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)

        def mappings():
            with open(f"/proc/{lis.p.pid}/maps") as f:
                return len(f.readlines())

        for _ in range(5):
            echo()
        before = mappings()
        for _ in range(100):
            echo()
        grown = mappings() - before
        self.assertEqual(lis.stop()[0], 0)
        self.assertLess(grown, 20, f"{grown} new mappings after 100 associations")

    def test_a_silent_caller_holds_up_nobody(self):
        # Callers that connect and send nothing, or part of a request, must not keep the
        # next caller waiting for the association timeout (30 s).
        lis = Listener(workdir("listen-silent"), "--port", "11128")
        silent = socket.create_connection(("127.0.0.1", 11128))
        trickle = socket.create_connection(("127.0.0.1", 11128))
        trickle.sendall(bytes([1, 0, 0, 0, 0x10, 0]))  # an A-ASSOCIATE-RQ header, and no more
        time.sleep(0.5)
        t0 = time.monotonic()
        p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.1", "11128"], capture_output=True, text=True,
                           timeout=60)
        waited = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(waited, 10, "the echo waited behind a silent caller")
        junk = socket.create_connection(("127.0.0.1", 11128))
        junk.sendall(b"GET / HTTP/1.0\r\n\r\n")  # not DICOM: dropped without an answer
        junk.settimeout(10)
        try:
            self.assertEqual(junk.recv(100), b"")
        except ConnectionResetError:  # closed with the junk unread: a reset
            pass
        for s in (silent, trickle, junk):
            s.close()
        self.assertEqual(lis.stop()[0], 0)

    def test_a_request_cut_short_costs_no_cpu(self):
        # Part of a request, then the caller hangs up: the rest will never come, and the
        # listener must not keep looking for it (it spun for the association timeout).
        lis = Listener(workdir("listen-cut"), "--port", "11129")
        cut = socket.create_connection(("127.0.0.1", 11129))
        cut.sendall(associate_request()[:20])
        cut.shutdown(socket.SHUT_WR)

        def cpu_seconds():
            with open(f"/proc/{lis.p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        time.sleep(0.5)
        before = cpu_seconds()
        time.sleep(2)
        spent = cpu_seconds() - before
        cut.close()
        self.assertEqual(lis.stop()[0], 0)
        self.assertLess(spent, 0.5, f"the listener used {spent:.2f} s of CPU in 2 s while idle")

    def test_a_rejected_caller_that_stays_holds_nothing(self):
        # Rejected (wrong called AE title) and still connected: the listener hangs up at
        # once instead of waiting up to 180 s for the caller, and nobody waits behind it.
        lis = Listener(workdir("listen-stays"), "--port", "11132", "--allow", "FRIEND")
        stays = []
        for called, calling in (("NOTLUMEN", "FRIEND"), ("LUMEN", "STRANGER")):
            s = socket.create_connection(("127.0.0.1", 11132), timeout=20)
            s.sendall(associate_request(called, calling))
            self.assertEqual(s.recv(1), b"\x03")  # A-ASSOCIATE-RJ
            stays.append(s)
        t0 = time.monotonic()
        p = subprocess.run(["echoscu", "-aet", "FRIEND", "-aec", "LUMEN", "127.0.0.1", "11132"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.monotonic() - t0, 10, "the echo waited behind a rejected caller")
        for s in stays:
            while s.recv(4096):  # the rest of the answer, then the listener's hang-up
                pass
            s.close()
        self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(lis.stop()[0], 0)

    def test_wrong_called_ae_is_rejected(self):
        d = workdir("listen-called")
        lis = Listener(d, "--port", "11122")
        p = subprocess.run(["echoscu", "-aec", "NOTLUMEN", "127.0.0.1", "11122"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        p = subprocess.run(["echoscu", "-aec", "LUMEN", "127.0.0.1", "11122"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        lis.stop()

    def test_kill9_mid_transfer_then_retry_completes(self):
        src = workdir("kill9-src")
        files = copy_with_new_uids(sample_files(), src, copies=6)  # 192 instances
        d = workdir("kill9")
        lis = Listener(d, "--port", "11123")
        sender = subprocess.Popen(["storescu", "+sd", "-aec", "LUMEN", "127.0.0.1", "11123", src],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while len(store_files(d)) < 20 and time.time() < deadline:
            time.sleep(0.02)
        lis.kill()  # SIGKILL, mid-transfer
        sender.wait(timeout=120)
        before = indexed(d)  # integrity_check ok inside
        self.assertGreater(len(before), 0)
        self.assertLess(len(before), len(files), "the kill came too late to test anything")
        for sop, path in before.items():  # every indexed file is complete
            ds = pydicom.dcmread(path)
            self.assertEqual(str(ds.SOPInstanceUID), sop)
            ds.pixel_array
        # After a restart the sender's retry completes the study; the crash's leftovers go.
        lis = Listener(d, "--port", "11123")
        self.storescu(src, 11123)
        lis.stop()
        after = indexed(d)
        self.assertEqual(len(after), len(files))
        self.assertEqual(len(store_files(d)), len(files))
        self.assertEqual(os.listdir(os.path.join(d, "store", ".incoming")), [])

    def test_disk_full_gives_a_failure_status_not_a_torn_file(self):
        d = workdir("diskfull")
        data = os.path.join(d, "data")
        os.makedirs(data)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", data]).returncode != 0:
            self.skipTest("cannot mount a small file system here")
        try:
            lis = Listener(data, "--port", "11124", "--min-free-mb", "2")
            p = self.storescu(SAMPLE, 11124, "-v", check=False)  # 17 MB into 10 MB
            lis.stop()
            self.assertIn("received store response (refused: outofresources)", p.stderr.lower() + p.stdout.lower())
            got = indexed(data)
            self.assertGreater(len(got), 0)
            self.assertLess(len(got), len(sample_files()))
            self.assertEqual(sorted(got.values()), store_files(data))  # nothing on disk unindexed
            for sop, path in got.items():
                self.assertEqual(str(pydicom.dcmread(path).SOPInstanceUID), sop)
        finally:
            subprocess.run(["umount", data])


if __name__ == "__main__":
    unittest.main()
