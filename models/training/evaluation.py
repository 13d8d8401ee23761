"""What the eval_*.py scripts share: their common options, the floors (and ceilings, for
errors) a bundle's model card records (docs/metrics.json) and the verdict of a --check run
(exit 1 beyond them, for CTest)."""
import argparse
import json
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def arg_parser(model, quick_help=None):
    """Options every evaluation takes: the lumen-cli to run, the bundle, the output folder,
    --quick (the CI version), --check and the thread count."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "release", "app", "lumen-cli"))
    ap.add_argument("--model", default=os.path.join(ROOT, "resources", "models", model))
    ap.add_argument("--out", default=f"/tmp/{model}_eval")
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    return ap


def floors(model_dir, mode=None):
    path = os.path.join(model_dir, "docs", "metrics.json")
    if not os.path.exists(path):
        raise SystemExit(f"{path}: missing (the model card's metrics)")
    f = json.load(open(path)).get("floors", {})
    if mode is not None:
        f = f.get(mode)
    if not f:
        raise SystemExit(f"{path}: no floors" + (f" for mode {mode}" if mode else ""))
    return f


def ceilings(model_dir, mode):
    """Metrics that must not exceed the card's (errors): {} when the card sets none."""
    path = os.path.join(model_dir, "docs", "metrics.json")
    return json.load(open(path)).get("ceilings", {}).get(mode, {}) if os.path.exists(path) else {}


def finish_check(failed):
    if failed:
        print("BELOW THE MODEL CARD:\n  " + "\n  ".join(failed))
        sys.exit(1)
    print("all metrics at or above the model card's floors")
