"""`--profile TARGET`: one scenario's load against one target while `perf record` samples the
target's processes; writes perf.data and a text report next to the results."""

import os
import shutil
import subprocess

from .scenarios import url_for
from .targets import LOAD_CPU, Lab


def profile(opts, scenario, target_name, workdir, bin_dir, out_dir):
    perf = shutil.which("perf")
    if not perf:
        raise SystemExit("perf not found: apt-get install linux-perf")
    lab = Lab(os.path.join(workdir, "profile"), bin_dir)
    try:
        lab.make_certs()
        target = lab.start()[target_name]
        port = target.ports.get(scenario.proto)
        if port is None:
            raise SystemExit(f"{target_name} has no listener for {scenario.key}")
        missing = scenario.missing(opts) if scenario.missing else None
        if missing:
            raise SystemExit(f"{scenario.key}: {missing}")
        url = url_for(scenario.proto, port)
        scenario.run(url, opts.warmup or 1, opts, lab)
        data = os.path.join(out_dir, f"perf-{target_name}-{scenario.key}.data")
        pids = ",".join(str(p) for p in target.pids())
        rec = subprocess.Popen(
            ["taskset", "-c", str(LOAD_CPU), perf, "record", "-F", "999", "-g", "-o", data,
             "-p", pids, "--", "sleep", str(opts.duration)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        res = scenario.run(url, opts.duration, opts, lab)
        try:
            rec.wait(opts.duration + 30)
        except subprocess.TimeoutExpired:
            rec.kill()
            rec.wait()
        text = os.path.join(out_dir, f"perf-{target_name}-{scenario.key}.txt")
        with open(text, "w") as f:
            subprocess.run([perf, "report", "-i", data, "--no-children", "--stdio",
                            "--percent-limit", "0.5", "-g", "none", "--sort", "dso,symbol"],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=300)
        print(f"{target_name} {scenario.key}: {res.get('rps', 0):.0f} req/s during the profile")
        print(f"written: {text} and {data}")
    finally:
        lab.stop()
