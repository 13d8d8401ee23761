#!/usr/bin/python3
"""DICOM TLS (BCP 195) against real peers, with a test CA: Lumen to an Orthanc that requires
client certificates, and dcmtk's storescu to Lumen's listener, including callers that
stall or trickle their handshake. Run with test_net (same environment, same namespaces:
tests/app/netns.sh); its helpers are shared from there.
"""
import json
import os
import socket
import ssl
import subprocess
import time
import unittest
import urllib.request

import numpy as np
import pydicom

from test_net import (CLI, ENV, SAMPLE, Listener, indexed, make_ca, make_cert, pixels_by_sop, sample_files,
                      start_orthanc, workdir)


def setUpModule():
    if not SAMPLE or not os.path.isdir(SAMPLE):
        raise unittest.SkipTest("no sample series")


def stalled_tls_caller(port):
    """A caller that sends its TLS ClientHello, then nothing more: stalled mid-handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:  # it waits for the server's answer, which it will never read
        pass
    hello = outgoing.read()
    if not hello or hello[0] != 0x16:
        raise AssertionError(f"no ClientHello: {hello[:8]!r}")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(hello)
    s.settimeout(10)
    answer = s.recv(5)  # the listener's first handshake record: the handshake has begun
    if not answer or answer[0] != 0x16:
        raise AssertionError(f"the listener did not answer the ClientHello: {answer!r}")
    s.settimeout(None)
    return s


class DicomTls(unittest.TestCase):
    """DICOM TLS (BCP 195) with a test CA, both ways: Lumen to an Orthanc that requires
    client certificates, and dcmtk's storescu to Lumen's listener."""

    @classmethod
    def setUpClass(cls):
        cls.d = d = workdir("dicom-tls")
        cls.ca = make_ca(d, "ca")
        cls.other_ca = make_ca(d, "other-ca")
        cls.server = make_cert(d, "server", cls.ca)
        cls.client = make_cert(d, "client", cls.ca)
        cls.stranger = make_cert(d, "stranger", cls.other_ca)
        cls.proc, cls.log = start_orthanc("orthanc-dicom-tls", 8045, 4244, {
            "DicomTlsEnabled": True, "DicomTlsCertificate": cls.server + ".crt",
            "DicomTlsPrivateKey": cls.server + ".key", "DicomTlsTrustedCertificates": cls.ca + ".pem",
            "DicomTlsRemoteCertificateRequired": True,
        })
        for f in sample_files()[:3]:
            with open(f, "rb") as fh:
                req = urllib.request.Request("http://127.0.0.1:8045/instances", data=fh.read(), method="POST")
                urllib.request.urlopen(req, timeout=30).read()
        cls.env = dict(ENV, LUMEN_CONFIG_DIR=workdir("dicom-tls-config"))

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=30)
        cls.log.close()

    def cli(self, *args, check=True):
        p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"lumen-cli {' '.join(args)} failed: {p.stdout}{p.stderr}")
        return p

    def test_lumen_to_orthanc(self):
        self.cli("nodes", "add", "tls", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", "4244",
                 "--tls-ca", self.ca + ".pem", "--tls-cert", self.client + ".crt", "--tls-key", self.client + ".key")
        self.assertIn("(TLS)", self.cli("nodes", "list").stdout)
        self.assertIn("echo ok", self.cli("echo", "tls").stdout)
        study = str(pydicom.dcmread(sample_files()[0]).StudyInstanceUID)
        d = workdir("dicom-tls-get")
        out = json.loads(self.cli("retrieve", "tls", "--study", study, "--data-dir", d, "--json").stdout)
        self.assertEqual(out["stored"], 3)
        src = pixels_by_sop(sample_files()[:3])
        for sop, path in indexed(d).items():
            self.assertTrue(np.array_equal(pydicom.dcmread(path).pixel_array, src[sop]))
        # The node's certificate from another CA, no client certificate, or no TLS at all: refused.
        self.cli("nodes", "add", "wrong-ca", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", "4244",
                 "--tls-ca", self.other_ca + ".pem", "--tls-cert", self.client + ".crt", "--tls-key",
                 self.client + ".key")
        self.cli("nodes", "add", "no-cert", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", "4244",
                 "--tls-ca", self.ca + ".pem")
        for name, why in (("wrong-ca", "certificate verify failed"), ("no-cert", "require a client certificate"),
                          ("ORTHANC@127.0.0.1:4244", "require DICOM TLS")):
            p = self.cli("echo", name, "--timeout", "5", check=False)
            self.assertEqual(p.returncode, 1, name)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertIn(why, p.stderr)

    def storescu(self, port, *tls):
        return subprocess.run(["storescu", "-aec", "LUMEN", *tls, "127.0.0.1", str(port), *sample_files()[:4]],
                              capture_output=True, text=True, timeout=120)

    def test_listener_with_a_key_that_does_not_match(self):
        env = dict(self.env, LUMEN_CONFIG_DIR=workdir("dicom-tls-badkey"))
        subprocess.run([CLI, "nodes", "local", "--tls-cert", self.server + ".crt", "--tls-key", self.client + ".key"],
                       env=env, check=True, capture_output=True)
        p = subprocess.run([CLI, "listen", "--data-dir", workdir("dicom-tls-badkey-data"), "--port", "11131"],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)  # an error, not a crash
        self.assertIn("does not match", p.stderr)

    def test_storescu_to_lumen(self):
        self.cli("nodes", "local", "--tls-cert", self.server + ".crt", "--tls-key", self.server + ".key",
                 "--tls-ca", self.ca + ".pem")
        d = workdir("dicom-tls-listen")
        lis = Listener(d, "--port", "11130", env=self.env)
        trust = ["+cf", self.ca + ".pem", "-pw"]
        # A caller that connects and says nothing (a port scan, a health check) holds up
        # nobody: the handshake waits for its ClientHello off the accepting thread. Nor
        # does one that stalls mid-handshake: each handshake runs on its caller's thread.
        silent = socket.create_connection(("127.0.0.1", 11130))
        stalled = stalled_tls_caller(11130)
        time.sleep(0.5)  # the stalled handshake has begun
        t0 = time.monotonic()
        ok = self.storescu(11130, "+tls", self.client + ".key", self.client + ".crt", *trust)
        waited = time.monotonic() - t0
        silent.close()
        stalled.close()
        plain = self.storescu(11130)
        stranger = self.storescu(11130, "+tls", self.stranger + ".key", self.stranger + ".crt", *trust)
        lis.stop()
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertLess(waited, 15, "the TLS caller waited behind a silent or a stalled one")
        self.assertNotEqual(plain.returncode, 0)
        self.assertNotEqual(stranger.returncode, 0)
        got = indexed(d)
        self.assertEqual(len(got), 4)
        src = pixels_by_sop(sample_files()[:4])
        for sop, path in got.items():
            self.assertTrue(np.array_equal(pydicom.dcmread(path).pixel_array, src[sop]))

    def tls_listener_env(self, name, **local):
        """The environment of a listener with DICOM TLS and these settings of its own
        (nodes.json "local"), in a configuration directory of its own."""
        cfg = workdir(name)
        env = dict(self.env, LUMEN_CONFIG_DIR=cfg)
        subprocess.run([CLI, "nodes", "local", "--tls-cert", self.server + ".crt", "--tls-key", self.server + ".key",
                        "--tls-ca", self.ca + ".pem"], env=env, check=True, capture_output=True)
        path = os.path.join(cfg, "nodes.json")
        with open(path) as f:
            nodes = json.load(f)
        nodes["local"].update(local)
        with open(path, "w") as f:
            json.dump(nodes, f)
        return env

    def test_callers_beyond_twice_the_limit_are_disconnected(self):
        # Handshakes run on workers of their own, so stalled ones could pile up: beyond
        # twice the association limit (here 1) a caller is disconnected at once, unanswered.
        env = self.tls_listener_env("dicom-tls-cap-config", max_associations=1)
        d = workdir("dicom-tls-cap")
        lis = Listener(d, "--port", "11132", env=env)
        tls = ["+tls", self.client + ".key", self.client + ".crt", "+cf", self.ca + ".pem", "-pw"]
        stalled = [stalled_tls_caller(11132) for _ in range(2)]
        time.sleep(0.5)  # both handshakes have begun
        t0 = time.monotonic()
        beyond = self.storescu(11132, *tls)
        waited = time.monotonic() - t0
        for s in stalled:
            s.close()
        time.sleep(1)  # their workers see them gone
        ok = self.storescu(11132, *tls)
        rc, summary = lis.stop()
        self.assertNotEqual(beyond.returncode, 0)
        self.assertLess(waited, 15, "the caller beyond the cap waited instead of being disconnected")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(rc, 0)
        self.assertIn("4 instance(s) stored", summary)
        self.assertIn(", 1 rejected", summary)
        self.assertEqual(len(indexed(d)), 4)


    def test_a_trickling_handshake_is_cut_off(self):
        # Each read of a handshake is bounded by the timeout, but a caller sending a byte
        # every second would never end one: the whole handshake is bounded too.
        env = self.tls_listener_env("dicom-tls-trickle-config", max_associations=1, timeout_seconds=3)
        d = workdir("dicom-tls-trickle")
        lis = Listener(d, "--port", "11133", env=env)
        tricklers = [stalled_tls_caller(11133) for _ in range(2)]  # both workers the cap allows
        for s in tricklers:
            s.sendall(b"\x16\x03\x03\x10\x00")  # a handshake record of 4096 bytes, sent byte by byte
        cut = set()
        for _ in range(8):  # 8 s, well past the 3 s timeout
            time.sleep(1)
            for i, s in enumerate(tricklers):
                try:
                    s.sendall(b"\x00")
                except OSError:
                    cut.add(i)
        tls = ["+tls", self.client + ".key", self.client + ".crt", "+cf", self.ca + ".pem", "-pw"]
        ok = self.storescu(11133, *tls)  # the tricklers still connected, still sending
        for s in tricklers:
            s.close()
        t0 = time.monotonic()
        rc, summary = lis.stop()
        self.assertEqual(cut, {0, 1}, "a trickling handshake was not cut off")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("4 instance(s) stored", summary)
