"""What the eval_*.py scripts share: the floors a bundle's model card records
(docs/metrics.json) and the verdict of a --check run (exit 1 below them, for CTest)."""
import json
import os
import sys


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


def finish_check(failed):
    if failed:
        print("BELOW THE MODEL CARD:\n  " + "\n  ".join(failed))
        sys.exit(1)
    print("all metrics at or above the model card's floors")
