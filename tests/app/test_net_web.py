#!/usr/bin/python3
"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) against the Orthanc that test_net starts: answers
equal to DIMSE's, transfers voxel-exact and in the syntax stored, unknown studies named
whatever form a node's answer takes; HTTPS with a private CA and basic auth against a
second Orthanc. Run with test_net (same environment, same namespaces: tests/app/netns.sh);
its helpers and its Orthanc are shared from there.
"""
import glob
import json
import os
import socket
import ssl
import subprocess
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pydicom

import test_net as net
from test_net import (CLI, CORPUS, ENV, copy_with_new_uids, http, indexed, make_ca, make_cert, run,
                      sample_files, start_orthanc, store_files, workdir)


def setUpModule():
    net.setUpModule()  # Orthanc holding the sample study, nodes "pacs" and "web"


def tearDownModule():
    net.tearDownModule()


class TlsProxy:
    """HTTPS on `port` in front of plain HTTP on `backend` (loopback), one thread per connection."""

    def __init__(self, port, backend, cert, key):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend = backend
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.relay, args=(conn,), daemon=True).start()

    def relay(self, conn):
        try:
            conn.settimeout(30)
            tls = self.context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()  # a client that does not trust the certificate ends here
            return
        up = socket.create_connection(("127.0.0.1", self.backend))

        def pump(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(up, tls), daemon=True)
        t.start()
        pump(tls, up)
        t.join(timeout=30)
        tls.close()
        up.close()

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


class Web(unittest.TestCase):
    """DICOMweb against the same Orthanc: answers equal to DIMSE's, transfers voxel-exact and
    in the syntax stored; HTTPS with a private CA and basic auth against a second Orthanc."""

    def test_echo_and_query_agree_with_dimse(self):
        self.assertIn("web: QIDO-RS ok", run("echo", "web").stdout)
        for args in ([], ["--level", "series", "--study", net.SOURCE_STUDY], ["--level", "series", "--modality", "CT"],
                     ["--patient-id", "NO-SUCH-PATIENT"]):
            dimse = json.loads(run("query", "pacs", *args, "--json").stdout)["matches"]
            web = json.loads(run("query", "web", *args, "--json").stdout)["matches"]
            key = lambda m: (m["study_uid"], m.get("series_uid", ""))
            self.assertEqual(sorted(web, key=key), sorted(dimse, key=key), args)
        self.assertTrue(any(m["study_uid"] == net.SOURCE_STUDY
                            for m in json.loads(run("query", "web", "--json").stdout)["matches"]))

    def test_wado_voxel_exact_in_the_stored_syntax(self):
        d = workdir("retrieve-wado")
        out = json.loads(run("retrieve", "web", "--study", net.SOURCE_STUDY, "--data-dir", d, "--json").stdout)
        self.assertEqual(out["stored"], len(sample_files()))
        net.Retrieve.check_voxels(self, d)
        run("retrieve", "web", "--study", net.SOURCE_STUDY, "--via", "wado", "--data-dir", d)  # idempotent
        self.assertEqual(len(store_files(d)), len(sample_files()))
        # Compressed instances come back as stored: transfer-syntax=*, no transcoding.
        mixed = os.path.join(CORPUS, "mixed-series")
        if not os.path.isdir(mixed):
            self.skipTest("corpus without mixed-series")
        src = copy_with_new_uids(sorted(glob.glob(os.path.join(mixed, "*"))), workdir("wado-mixed-src"))
        for f in src:
            with open(f, "rb") as fh:
                http("POST", "/instances", fh.read())
        first = pydicom.dcmread(src[0])
        d = workdir("retrieve-wado-mixed")
        run("retrieve", "web", "--study", str(first.StudyInstanceUID), "--series", str(first.SeriesInstanceUID),
            "--data-dir", d)
        got = indexed(d)
        self.assertEqual(len(got), len(src))
        for f in src:
            ds = pydicom.dcmread(f)
            back = pydicom.dcmread(got[str(ds.SOPInstanceUID)])
            self.assertEqual(back.file_meta.TransferSyntaxUID, ds.file_meta.TransferSyntaxUID, f)
            self.assertTrue(np.array_equal(back.pixel_array, ds.pixel_array), f)

    def test_stow_keeps_bytes_and_syntax(self):
        mixed = os.path.join(CORPUS, "mixed-series")
        if not os.path.isdir(mixed):
            self.skipTest("corpus without mixed-series")
        src = copy_with_new_uids(sorted(glob.glob(os.path.join(mixed, "*"))), workdir("stow-src"))
        out = json.loads(run("send", "web", os.path.dirname(src[0]), "--json").stdout)
        self.assertEqual((out["sent"], out["failed"]), (len(src), 0))
        for f in src:
            ds = pydicom.dcmread(f)
            hits = [h for h in http("POST", "/tools/lookup", str(ds.SOPInstanceUID).encode()) if h["Type"] == "Instance"]
            self.assertEqual(len(hits), 1, f)
            ts = http("GET", f"/instances/{hits[0]['ID']}/metadata/TransferSyntax")
            self.assertEqual(ts.decode() if isinstance(ts, bytes) else ts, str(ds.file_meta.TransferSyntaxUID), f)
            with open(f, "rb") as fh:
                self.assertEqual(http("GET", f"/instances/{hits[0]['ID']}/file"), fh.read(), f)  # byte for byte

    def test_wrong_protocol_and_unknown_study_are_named(self):
        p = run("retrieve", "web", "--study", net.SOURCE_STUDY, "--via", "get", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is a DICOMweb node", p.stderr)
        p = run("retrieve", "pacs", "--study", net.SOURCE_STUDY, "--via", "wado", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is a DIMSE node", p.stderr)
        d = workdir("wado-none")
        p = run("retrieve", "web", "--study", "1.2.3.4.5.6.7", "--data-dir", d, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such study on the node", p.stderr)
        p = run("retrieve", "web", "--study", net.SOURCE_STUDY, "--series", "1.2.3.4.5.6.8", "--data-dir", d, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such series on the node", p.stderr)

    def bare_node(self, wado):
        """A DICOMweb node "bare" on loopback: QIDO-RS finds nothing, WADO-RS answers with
        `wado(handler)` -> (status, content type, body, declared length or None)."""
        class Node(BaseHTTPRequestHandler):
            def do_GET(self):
                status, ctype, body, length = (200, "application/dicom+json", b"[]", None) if "?" in self.path \
                    else wado(self)  # "?": a QIDO-RS query
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                if length is not None:  # promised more: cut the connection short
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

            def log_message(self, *args):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Node)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        run("nodes", "add", "bare", "--url", f"http://127.0.0.1:{srv.server_address[1]}/dicom-web")

        def close():
            srv.shutdown()
            srv.server_close()
            run("nodes", "remove", "bare", check=False)
        self.addCleanup(close)

    def test_unknown_study_answered_without_404_is_named(self):
        # PS3.18 lets a node answer a retrieve of something it lacks with 204, or an empty
        # multipart body, instead of 404: a QIDO listing without a match still names it.
        answer = [None]
        self.bare_node(lambda handler: answer[0])
        for answer[0] in ((204, "", b"", None),
                          (200, "multipart/related; type=\"application/dicom\"; boundary=b", b"--b--\r\n", None),
                          (200, "application/dicom+json", b"[]", None)):
            for series in ([], ["--series", "1.2.3.4.5.6.8"]):
                p = run("retrieve", "bare", "--study", "1.2.3.4.5.6.7", *series, "--data-dir", workdir("wado-bare"),
                        check=False)
                self.assertEqual(p.returncode, 1, answer[0])
                self.assertIn("no such series on the node" if series else "no such study on the node", p.stderr,
                              answer[0])

    def test_a_cut_off_download_says_what_it_stored(self):
        # One whole part, the start of a second, and the connection cut before the length
        # promised: the first is kept (durable, indexed) and the error says so.
        files = sample_files()[:2]
        with open(files[0], "rb") as f:
            first = f.read()
        with open(files[1], "rb") as f:
            second = f.read()
        head = b"--b\r\nContent-Type: application/dicom\r\n\r\n"
        body = head + first + b"\r\n" + head + second[:len(second) // 2]
        self.bare_node(lambda handler: (200, "multipart/related; type=\"application/dicom\"; boundary=b", body,
                                        len(body) + len(second)))
        d = workdir("wado-cut")
        p = run("retrieve", "bare", "--study", net.SOURCE_STUDY, "--data-dir", d, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("1 instance(s) stored; retrieving again completes the rest", p.stderr)
        self.assertEqual(list(indexed(d)), [str(pydicom.dcmread(files[0]).SOPInstanceUID)])

    def test_https_private_ca_and_basic_auth(self):
        d = workdir("tls")
        ca = make_ca(d, "ca")
        srv = make_cert(d, "srv", ca)
        # Debian's Orthanc 1.10 crashes on its first HTTPS request (civetweb with OpenSSL 3),
        # so TLS is terminated in front of it, by Python's ssl module with the test CA's
        # certificate; Orthanc behind it wants basic auth.
        proc, log = start_orthanc("orthanc-auth", 8044, 4243, {
            "AuthenticationEnabled": True, "RegisteredUsers": {"alice": "wonderland"},
        })
        proxy = TlsProxy(8043, 8044, srv + ".crt", srv + ".key")
        try:
            url = "https://127.0.0.1:8043/dicom-web"
            env = dict(ENV, LUMEN_NODE_PASSWORD="wonderland")
            add = [CLI, "nodes", "add"]
            subprocess.run(add + ["tls", "--url", url, "--auth", "basic", "--user", "alice", "--ca-file", ca + ".pem"],
                           env=env, check=True, capture_output=True)
            subprocess.run(add + ["tls-noca", "--url", url, "--auth", "basic", "--user", "alice"],
                           env=env, check=True, capture_output=True)
            subprocess.run(add + ["tls-badpw", "--url", url, "--auth", "basic", "--user", "alice", "--ca-file",
                                  ca + ".pem"], env=dict(ENV, LUMEN_NODE_PASSWORD="guess"), check=True,
                           capture_output=True)
            subprocess.run(add + ["cleartext", "--url", "http://192.0.2.1/dicom-web", "--auth", "basic", "--user",
                                  "alice"], env=env, check=True, capture_output=True)
            self.assertIn("tls: QIDO-RS ok", run("echo", "tls").stdout)
            p = run("echo", "tls-noca", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("certificate is not trusted", p.stderr)
            p = run("echo", "tls-badpw", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("HTTP 401", p.stderr)
            p = run("echo", "cleartext", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("unencrypted", p.stderr)
            for q in (p.stderr, run("nodes", "list").stdout, run("nodes", "list", "--json").stdout):
                self.assertNotIn("wonderland", q)  # the password is never shown
            # A study over HTTPS with auth, both ways.
            d = workdir("tls-data")
            src = copy_with_new_uids(sample_files()[:3], workdir("tls-src"))
            self.assertEqual(json.loads(run("send", "tls", os.path.dirname(src[0]), "--json").stdout)["sent"], 3)
            study = str(pydicom.dcmread(src[0]).StudyInstanceUID)
            self.assertEqual(json.loads(run("retrieve", "tls", "--study", study, "--data-dir", d,
                                            "--json").stdout)["stored"], 3)
        finally:
            proxy.close()
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
            for n in ("tls", "tls-noca", "tls-badpw", "cleartext"):
                run("nodes", "remove", n, check=False)


if __name__ == "__main__":
    unittest.main()
