#!/usr/bin/env python3
"""RSS of a Go binary once its package initialisers have run, and what holds it.

  hack/rss.py BIN ARGS...           median VmRSS (anonymous, file) of 5 runs
  hack/rss.py --pages BIN ARGS...   also which of BIN's pages are resident, by ELF section
                                    and, through its symbols, by module (needs root for
                                    /proc/PID/pagemap and a BIN built without -s -w)

BIN runs with its stdout on a pipe that is already full, so its first write blocks: with
`satellite version` that is after every initialiser and before any work, the floor that the
imports alone cost (docs/performance.md, "What holds Satellite's memory"). Run BIN from a tmpfs
without huge pages (/dev/shm): on ext4 with large folios (Linux 6.16 and later) a fault maps
a whole folio of the page cache, whose size depends on how the file was written, so RssFile
moves by megabytes between two builds of the same code.
"""
import bisect
import collections
import fcntl
import os
import re
import struct
import subprocess
import sys
import time

F_SETPIPE_SZ = 1031


def full_pipe():
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    return r, w


def status(pid):
    st = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    s = {k: int(st[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}
    s["RssFile"] += s.pop("RssShmem")  # a binary run from tmpfs
    return s


def module(name):
    """The module (or std) a Go symbol belongs to."""
    for pre in ("type:.eq.", "type:.hash.", "go:itab.*", "go:itab.", "type:*", "type:", "go:string.", "go:func."):
        if name.startswith(pre):
            name = name[len(pre):]
    name = name.lstrip("*[]()")
    slash = name.rfind("/", 0, name.find("(") if "(" in name else len(name))
    dot = name.find(".", slash + 1)
    parts = (name[:dot] if dot > 0 else name).split("/")
    if "." not in parts[0]:
        return "std"
    short = parts[0] in ("gopkg.in", "go.yaml.in", "go.opentelemetry.io", "go.opencensus.io", "go.uber.org")
    k8s = parts[0] == "k8s.io" and len(parts) > 1 and parts[1] in ("apiserver", "client-go", "api", "apimachinery", "component-base", "kube-openapi")
    return "/".join(parts[: 2 if short or k8s else 3])


def sections(binary):
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    secs = []
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m and int(m.group(2), 16):
            secs.append((int(m.group(2), 16), int(m.group(3), 16), m.group(1)))
    return secs


def symbols(binary):
    out = subprocess.run(["go", "tool", "nm", "-size", "-sort", "address", binary], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split(None, 3)
        if len(f) == 4 and int(f[1]) > 0:
            syms.append((int(f[0], 16), int(f[1]), f[3]))
    return sorted(syms)


def resident(pid, binary):
    """Addresses of the pages of binary's mappings that are in the process's page table."""
    pages = []
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for m in (line.split() for line in open(f"/proc/{pid}/maps")):
            if len(m) < 6 or os.path.realpath(m[5]) != os.path.realpath(binary):
                continue
            lo, hi = (int(x, 16) for x in m[0].split("-"))
            pm.seek(lo // 4096 * 8)
            data = pm.read((hi - lo) // 4096 * 8)
            for i in range((hi - lo) // 4096):
                if struct.unpack_from("<Q", data, i * 8)[0] >> 63:
                    pages.append(lo + i * 4096)
    return pages


def attribute(pages, secs, syms):
    starts = [s[0] for s in syms]
    bysec, bymod = collections.Counter(), collections.Counter()
    for pg in pages:
        sec = next((s[2] for s in secs if s[0] <= pg < s[0] + s[1]), "other")
        bysec[sec] += 4096
        if sec not in (".text", ".rodata", ".noptrdata", ".data"):
            continue
        covered, i = 0, bisect.bisect_right(starts, pg + 4095) - 1
        while i >= 0 and syms[i][0] > pg - (1 << 17):
            lo, hi = max(syms[i][0], pg), min(syms[i][0] + syms[i][1], pg + 4096)
            if hi > lo:
                bymod[module(syms[i][2])] += hi - lo
                covered += hi - lo
            i -= 1
        bymod[f"(no symbol, {sec})"] += max(0, 4096 - covered)
    return bysec, bymod


def main(argv):
    pages = argv[:1] == ["--pages"]
    cmd = argv[1:] if pages else argv
    _, w = full_pipe()
    runs = []
    for _ in range(1 if pages else 5):
        p = subprocess.Popen(cmd, stdout=w, stderr=subprocess.DEVNULL)
        time.sleep(1)
        runs.append(status(p.pid))
        held = resident(p.pid, cmd[0]) if pages else []
        p.kill()
        p.wait()
    runs.sort(key=lambda s: s["VmRSS"])
    s = runs[len(runs) // 2]
    print("VmRSS %.1f MiB (RssAnon %.1f, RssFile %.1f), median of %d" % (s["VmRSS"] / 1024, s["RssAnon"] / 1024, s["RssFile"] / 1024, len(runs)))
    if not pages:
        return
    bysec, bymod = attribute(held, sections(cmd[0]), symbols(cmd[0]))
    print("resident pages of %s: %.1f MiB" % (cmd[0], len(held) * 4096 / 2**20))
    for k, v in bysec.most_common():
        if v >= 2**16:
            print("  %6.1f MiB  %s" % (v / 2**20, k))
    print("by module (.text, .rodata, .data):")
    for k, v in bymod.most_common(30):
        print("  %6.2f MiB  %s" % (v / 2**20, k))


if __name__ == "__main__":
    main(sys.argv[1:])
