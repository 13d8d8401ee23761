#!/usr/bin/python3
"""The GUI's Query / Retrieve against Orthanc (CTest gui_pacs), run inside tests/app/netns.sh.

usage: gui_pacs.py XVFB_RUN LUMEN_GUI_TESTS

Starts Orthanc holding the sample CT, configures a DIMSE and a DICOMweb node for it with
lumen-cli, and runs the GUI test queryAndRetrieveFromAPacs under Xvfb; fails unless that
test ran and passed (a skip is not a pass).
"""
import glob
import os
import subprocess
import sys

import pydicom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_net as net  # noqa: E402  (its Orthanc and lumen-cli helpers)


def main():
    xvfb, gui_tests = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(net.SAMPLE, "*")))
    if not files:
        print("skipped: no sample series")
        return 77
    net.ENV["LUMEN_CONFIG_DIR"] = net.workdir("gui-pacs-config")
    orthanc, log = net.start_orthanc("gui-pacs-orthanc", 8042, net.ORTHANC_PORT, {})
    try:
        for f in files:
            with open(f, "rb") as fh:
                net.http("POST", "/instances", fh.read())
        first = pydicom.dcmread(files[0])
        net.run("nodes", "add", "pacs", "--aet", "ORTHANC", "--host", "127.0.0.1", "--port", str(net.ORTHANC_PORT))
        net.run("nodes", "add", "web", "--url", net.ORTHANC_HTTP + "/dicom-web")
        env = dict(net.ENV, LUMEN_TEST_PACS_STUDY=str(first.StudyInstanceUID),
                   LUMEN_TEST_PACS_PATIENT=str(first.PatientName), LUMEN_TEST_PACS_CONFIG=net.ENV["LUMEN_CONFIG_DIR"])
        p = subprocess.run([xvfb, "-a", "-s", "-screen 0 1600x1000x24", gui_tests, "queryAndRetrieveFromAPacs"],
                           env=env, capture_output=True, text=True, timeout=540)
        sys.stdout.write(p.stdout + p.stderr)
        if p.returncode != 0:
            return 1
        if "PASS   : GuiTest::queryAndRetrieveFromAPacs" not in p.stdout:
            print("the GUI test did not run")
            return 1
        return 0
    finally:
        orthanc.terminate()
        orthanc.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
