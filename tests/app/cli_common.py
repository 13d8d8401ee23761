"""Shared by the lumen-cli tests run from outside (test_cli, test_inference,
test_anonymize, test_results): the environment CTest sets (LUMEN_CLI, LUMEN_CORPUS,
LUMEN_SAMPLE, LUMEN_FULL_CT, LUMEN_WORK, LUMEN_TEST_MODELS) and how they call lumen-cli."""
import os
import shutil
import subprocess
import tempfile

CLI = os.environ.get("LUMEN_CLI", "lumen-cli")
CORPUS = os.environ.get("LUMEN_CORPUS", "")
SAMPLE = os.environ.get("LUMEN_SAMPLE", "")
FULL_CT = os.environ.get("LUMEN_FULL_CT", "")
WORK = os.environ.get("LUMEN_WORK", tempfile.gettempdir())


def no_sanitizer_report(p):
    # Under the asan preset an error report must fail the test even where exit status 1 (a
    # refused input) is expected.
    if "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        raise AssertionError(f"sanitizer report from lumen-cli {' '.join(p.args[1:])}:\n{p.stderr}")


def run(*args, check=True):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)
    no_sanitizer_report(p)
    if check and p.returncode != 0:
        raise AssertionError(f"lumen-cli {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def workdir(name):
    d = os.path.join(WORK, "cli", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


MODELS = os.environ.get("LUMEN_TEST_MODELS", "")


TRUST_DIR = os.path.join(WORK, "cli", "config")  # the trusted-models list of these tests


def infer(*args, check=True, trust=True):
    """lumen-cli infer with the test bundles; `trust`: --trust (they are the tests' own)."""
    # The default study database of the tests is their own (infer stores a SEG of a series in it).
    env = dict(os.environ, LUMEN_MODEL_PATH=MODELS, LUMEN_CONFIG_DIR=TRUST_DIR,
               LUMEN_DATA_DIR=os.environ.get("LUMEN_DATA_DIR", os.path.join(WORK, "cli", "default-data")))
    p = subprocess.run([CLI, "infer", *(["--trust"] if trust else []), *args], capture_output=True, text=True,
                       timeout=600, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"lumen-cli infer {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p
