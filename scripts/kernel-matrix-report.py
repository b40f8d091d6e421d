#!/usr/bin/env python3
"""kernel-matrix-report.py OUT RESULTS KERNEL...: the table of scripts/kernel-matrix.sh, from what
its runs left in OUT/<kernel>/ (uname, results, budget.log, seconds, done); writes
RESULTS/kernel-matrix.md and RESULTS/kernel-insns.tsv (kernel, program, verified_insns), prints
the table, and exits 1 when a kernel failed."""
import os
import re
import sys

# Columns in this order, then any other program the budget test reported.
ORDER = ["pcn_xdp_classify", "pcn_tc_classify", "pcn_ingress", "pcn_egress", "pcn_answer"]


def kernel_row(d, host):
    def read(f):
        p = os.path.join(d, f)
        return open(p, errors="replace").read().strip() if os.path.exists(p) else ""

    res = [line.split("\t") for line in read("results").splitlines() if line]
    ok = sum(r == "ok" for _, _, r in res)
    not_run = sum(r == "not-run" for _, _, r in res)
    bad = [n if "::" in n else f"{t}::{n}" for t, n, r in res if r not in ("ok", "not-run")]
    log = read("budget.log").splitlines()
    # Why the first install failed: pcn-iptables' message and the verifier's last word.
    why = next((l[len("pcn-iptables: ") :] for l in log if l.startswith("pcn-iptables: ")), "")
    last = [log[i - 1].strip() for i, l in enumerate(log) if l.startswith("verification time")]
    if why.startswith("loading ") and last:
        why = why.split(":")[0] + ": " + last[0]
    if why:
        bad.append("first install: " + why[:150])
    if not os.path.exists(os.path.join(d, "done")):
        status = f"FAIL: the run did not finish, see console.log ({ok} passed)"
    elif bad or not_run:
        status = f"FAIL ({ok}/{len(res)})"
    else:
        status = f"pass ({ok}/{len(res)})"
    notes = bad + ([f"{not_run} not run"] if not_run else [])
    status += ": " + "; ".join(notes) if notes else ""
    if retried := read("retried"):
        status += f" (booted twice: the first guest kernel panicked, {retried[:80]}; console-panic.log)"
    insns = {m[1]: int(m[2]) for l in log if (m := re.match(r"budget: (pcn_\w+) (\d+)$", l))}
    install = next((m[1] for l in log if (m := re.match(r"budget: install ([\d.]+)$", l))), "")
    uname = read("uname") or os.path.basename(d)
    version = read("version")
    label = uname + (" (this machine, no VM)" if host else f" (Debian {version}, QEMU)" if version else "")
    return uname, label, status, insns, install, read("seconds")


def main():
    out, results, kernels = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = [kernel_row(os.path.join(out, k), k == "host") for k in kernels]
    seen = {p for r in rows for p in r[3]}
    programs = [p for p in ORDER if p in seen] + sorted(seen - set(ORDER))
    head = ["kernel", "result"] + programs + ["first install (s)", "run (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    tsv = ["kernel\tprogram\tverified_insns"]
    for uname, label, status, insns, install, secs in rows:
        cells = [label, status.replace("|", "\\|")]
        cells += [f"{insns[p]:,}" if p in insns else "—" for p in programs]
        lines.append("| " + " | ".join(cells + [install or "—", secs or "—"]) + " |")
        tsv += [f"{uname}\t{p}\t{insns[p]}" for p in programs if p in insns]
    table = "\n".join(lines)
    note = (
        "Processed instructions (`verified_insns`) of every program at the first install, "
        "budget 200,000 each (tests/budget.rs). The kernels other than this machine's run in "
        "QEMU without KVM, about ten times slower: their times are not the machine's. "
        "Made by `bash scripts/kernel-matrix.sh`."
    )
    with open(os.path.join(results, "kernel-matrix.md"), "w") as f:
        f.write(table + "\n\n" + note + "\n")
    with open(os.path.join(results, "kernel-insns.tsv"), "w") as f:
        f.write("\n".join(tsv) + "\n")
    print("\n" + table + "\n")
    return 0 if all(r[2].startswith("pass") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
