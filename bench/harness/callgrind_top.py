"""The functions that executed the most instructions (self cost) in a callgrind file.

    python3 bench/harness/callgrind_top.py FILE [--requests N] [--top 25]

Why not callgrind_annotate: on the dumps bench/instructions.sh asks for (callgrind_control
--dump on a tokio process), Debian's callgrind_annotate 3.19 charges every instruction to the
thread's entry function. Reading the cost lines directly gives each function's own cost.
"""

import argparse
import collections


def self_costs(path):
    """Instructions executed in each function itself (calls to others not included)."""
    costs = collections.Counter()
    fn = None
    call_line = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                fn = line[3:].rstrip("\n")
            elif line.startswith("calls="):
                # The next cost line is the inclusive cost of that call: not this function's.
                call_line = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if call_line:
                    call_line = False
                    continue
                parts = line.split()
                if fn is not None and len(parts) >= 2:
                    costs[fn] += int(parts[1])
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    costs = self_costs(args.file)
    total = sum(costs.values()) or 1
    print(f"{'share':>6} {'per request':>12}  function")
    for name, cost in costs.most_common(args.top):
        print(f"{cost * 100 / total:5.1f}% {cost / args.requests:12,.0f}  {name[:120]}")


if __name__ == "__main__":
    main()
