"""What the train_*.py scripts share: Adam under a one-cycle schedule, a log line every few
steps, and the files make_bundle.py reads (model.ts, weights.pt, training.json)."""
import json
import os
import time

import torch


def fit(net, steps, max_lr, step_loss, validate, every, loss_entry=lambda v: {"loss": round(v, 4)}):
    """Trains `net` for `steps` steps. step_loss(net) -> the loss of one training batch;
    validate(net) -> dict of validation numbers, called (no gradients, eval mode) every
    `every` steps and after the last; loss_entry(last loss) -> how the log shows it.
    Returns (log, seconds)."""
    opt = torch.optim.Adam(net.parameters(), lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps, pct_start=0.05)
    log = []
    t0 = time.time()
    for step in range(1, steps + 1):
        net.train()
        loss = step_loss(net)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == steps:
            net.eval()
            with torch.no_grad():
                numbers = validate(net)
            entry = {"step": step, "minutes": round((time.time() - t0) / 60, 1), **loss_entry(loss.item()), **numbers}
            log.append(entry)
            print(json.dumps(entry), flush=True)
    return log, time.time() - t0


def save(net, out, args, log, seconds, **extra):
    """Writes weights.pt, model.ts (TorchScript) and training.json (arguments, log, time and
    `extra`) to `out`."""
    os.makedirs(out, exist_ok=True)
    net.eval()
    torch.save(net.state_dict(), os.path.join(out, "weights.pt"))
    torch.jit.script(net).save(os.path.join(out, "model.ts"))
    json.dump({"args": vars(args), **extra, "log": log, "seconds": seconds}, open(os.path.join(out, "training.json"), "w"),
              indent=1)
    print("wrote", os.path.join(out, "model.ts"))
