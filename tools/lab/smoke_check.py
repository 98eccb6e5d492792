#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""smoke_check.py — the lab's smoke test (ctest lab_smoke): every experiment at a small size, then the
quick tour; the JSON and the report are checked, not just produced.

    smoke_check.py HMAP_LAB WORK_DIR

Checks, for each experiment run alone with --n and --json: exit status 0; the JSON names the experiment,
every claim has a verdict, and the figures are consistent — hmap's bytes fall after the deletes while
no_shrink's do not, Go's B stays (when Go ran), every pooled map is destroyed within two cycles, one reset by
hmap_reset (or a no_shrink one emptied by deletes) is reused without allocating or regrowing, hmap_sync's
bytes fall after the deletes to at most 2.5x a fresh hmap_sync (sync.Map's figures present), RSS falls where
hmap gives memory back (not checked in a sanitizer build, whose allocator keeps freed memory); terminal
lines are at most 120 columns. For the tour (--quick): every experiment ran; the report parses as HTML and
holds one section per experiment, each with at least one <svg>; the summary in the JSON has every claim.
Also: --help lists every experiment and an unknown option fails.
Only the standard library is used (python3 from scripts/deps).
"""
import html.parser
import json
import os
import subprocess
import sys

EXPERIMENTS = {"grow": 20000, "delete": 20000, "tophash": 8, "values": 8, "iterate": 20000, "signals": 10000,
               "release": 20000, "pool": 200, "sync": 20000}
VERDICTS = {"holds", "does not hold", "partly", "not measured"}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(lab, args, work):
    env = dict(os.environ, LAB_OUT=work)
    p = subprocess.run([lab] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, timeout=400)
    return p


def metric(section, impl, key):
    return section["implementations"].get(impl, {}).get("metrics", {}).get(key)


def go_ran(section):
    g = section["implementations"].get("go")
    return bool(g and g.get("ok"))


def check_terminal(name, out):
    wide = [l for l in out.splitlines() if len(l) > 120]
    check(not wide, f"{name}: {len(wide)} terminal lines wider than 120 columns, e.g. {wide[:1]}")


def check_section(name, s, sanitized):
    check(s["experiment"] == name, f"{name}: JSON names experiment {s['experiment']}")
    check(len(s["claims"]) > 0, f"{name}: no claims")
    for c in s["claims"]:
        check(c["verdict"] in VERDICTS, f"{name}: claim {c['claim']!r} has verdict {c['verdict']!r}")
        check(bool(c["measured"]) and bool(c["reason"]), f"{name}: claim {c['claim']!r} without figures or reason")
    check(s["plots"] >= 1, f"{name}: no plot")
    main_impl = "hmap_sync" if name == "sync" else "hmap"
    hmap = s["implementations"].get(main_impl, {})
    check(hmap.get("ok"), f"{name}: {main_impl}'s run failed: {hmap.get('why')}")
    go = go_ran(s)
    if name == "delete":
        for impl in ("hmap", "no_shrink"):
            for k in ("filled.bytes", "deleted99.bytes", "deletedall.bytes", "fresh.bytes"):
                check(metric(s, impl, k) is not None, f"delete: {impl} {k} missing")
        hf, hd = metric(s, "hmap", "filled.bytes"), metric(s, "hmap", "deleted99.bytes")
        check(hd < hf / 10, f"delete: hmap's bytes did not fall after the deletes ({hf} -> {hd})")
        check(hd <= 2.5 * metric(s, "hmap", "fresh.bytes"), "delete: hmap holds more than 2.5x a fresh map")
        check(metric(s, "hmap", "deletedall.bytes") < hd, "delete: hmap's bytes did not fall after deleting all")
        nf, nd = metric(s, "no_shrink", "filled.bytes"), metric(s, "no_shrink", "deleted99.bytes")
        check(nd >= nf, f"delete: no_shrink's bytes fell ({nf} -> {nd})")
        if go:
            B = [metric(s, "go", k + ".B") for k in ("filled", "deleted99", "deletedall")]
            check(B[0] == B[1] == B[2] and B[0] > 0, f"delete: Go's B did not stay: {B}")
            check(metric(s, "go", "deleted99.bytes") >= 0.9 * metric(s, "go", "filled.bytes"),
                  "delete: Go's heap fell after the deletes")
    if name == "grow":
        check(metric(s, "hmap", "grow.growths") == metric(s, "hmap", "grow.load_rule_ok"),
              "grow: an hmap growth started off the load rule")
        check(metric(s, "hmap", "grow.lookup_evacuations") == 0, "grow: an hmap lookup moved buckets")
        if go:
            check(metric(s, "go", "grow.max_evacuated_per_write") <= 2, "grow: a Go write evacuated more than 2")
            check(metric(s, "go", "fake.B_start") == metric(s, "go", "fake.B_end"), "grow: Go's B changed under churn")
    if name == "iterate":
        for impl in ("hmap", "go") if go else ("hmap",):
            check(metric(s, impl, "survivors") == metric(s, impl, "survivors_once"),
                  f"iterate: {impl} did not yield every survivor exactly once")
            check(metric(s, impl, "yielded_after_delete") == 0, f"iterate: {impl} yielded a deleted key")
        check(metric(s, "hmap", "shrinks") > 0, "iterate: hmap did not shrink under the iteration")
    if name == "pool":
        check_pool(s, go)
    if name == "sync":
        check_sync(s, go, sanitized)
    if sanitized:  # ASan keeps freed memory in quarantine: RSS says nothing about the map
        return
    if name == "values":
        check(metric(s, "hmap", "deleted.rss") < metric(s, "hmap", "filled.rss") / 2,
              "values: hmap's RSS did not fall after the deletes")
    if name == "release":
        check(metric(s, "no_shrink", "settled.rss") < metric(s, "no_shrink", "deleted.rss"),
              "release: RSS did not fall after hmap_compact")
        # 200 survivors sit at 96% of a 32-bucket array's limit: with the map's random seed they need 3 to 16
        # overflow buckets (5.3-7.4 KiB in all, against the fixed-seed fresh map's 6.1 KiB), so the margin is
        # wide; without the compact the map holds ~100x
        check(metric(s, "hmap", "compact.bytes") <= 1.5 * metric(s, "hmap", "fresh.bytes"),
              "release: hmap_compact left more than 1.5x a fresh map")
    if name == "signals":
        check(metric(s, "no_shrink", "map_bytes") > 5 * metric(s, "hmap", "map_bytes"),
              "signals: no_shrink does not hold more than hmap")


def check_pool(s, go):
    """Every pooled map is destroyed by the second cycle, nothing is left after hmap_pool_free, and a pooled
    map that keeps its arrays (reset by hmap_reset, or no_shrink and emptied by deletes) is reused without
    allocating or regrowing, on 1 and 2 threads; one reset by hmap_clear regrows them."""
    for impl in ("pool_clear", "pool_reset", "pool_delete", "pool_keep"):
        for t in ("t1.", "t2."):
            made, destroyed = metric(s, impl, t + "made"), metric(s, impl, t + "destroyed")
            check(made is not None and 1 <= made <= int(t[1]) and made == destroyed,
                  f"pool: {impl} {t} made {made} maps, destroyed {destroyed}")
            check(metric(s, impl, t + "cycle2.idle") == 0, f"pool: {impl} {t} still holds maps after two cycles")
            check(metric(s, impl, t + "cycle2.bytes") < metric(s, impl, t + "full.map_bytes"),
                  f"pool: {impl} {t} holds a map's worth of bytes after two cycles")
            check(metric(s, impl, t + "freed.bytes") == 0, f"pool: {impl} {t} bytes left after hmap_pool_free")
            check(metric(s, impl, t + "held.idle") >= 1, f"pool: {impl} {t} held no idle map when the load stopped")
    check(metric(s, "hmap", "t1.held.bytes") == 0, "pool: the unpooled loop left bytes behind")
    for impl in ("pool_reset", "pool_keep"):
        for t in ("t1.", "t2."):
            none, pooled = metric(s, "hmap", t + "mallocs_per_req"), metric(s, impl, t + "mallocs_per_req")
            check(none >= 1 and pooled < none / 10,
                  f"pool: {impl} {t} allocates {pooled} per request (no pool: {none})")
            regrows = metric(s, impl, t + "regrows_per_req")
            check(regrows == 0, f"pool: {impl} {t} reused maps regrew ({regrows} doublings per request)")
    check(metric(s, "pool_clear", "t1.regrows_per_req") > 0, "pool: a map reset by hmap_clear did not regrow")
    if go:
        full = metric(s, "go", "map_bytes")
        for t in ("t1.", "t2."):
            check(metric(s, "go", t + "pool.mallocs_per_req") < metric(s, "go", t + "none.mallocs_per_req") / 10,
                  f"pool: Go's sync.Pool did not save allocations ({t})")
            check(metric(s, "go", t + "pool.cycle1.bytes") >= full / 2, f"pool: Go's idle map did not survive one GC ({t})")
            check(metric(s, "go", t + "pool.cycle2.bytes") < full / 4, f"pool: Go's idle map survived two GCs ({t})")


def check_sync(s, go, sanitized):
    """Every figure of both maps is there; hmap_sync's bytes (and the library's live bytes) fall after the
    deletes, to at most 2.5x a fresh hmap_sync once the deferred frees have run; the counts are the
    experiment's; sync.Map's inside, when the companion read it, agrees with the counts."""
    n = s["n"]
    steps = ("empty", "filled", "deleted99", "deletedall", "round1_stored", "round1_missed", "round2_stored",
             "round2_missed")
    for impl in ("hmap_sync", "go") if go else ("hmap_sync",):
        for st in steps:
            for k in ("bytes", "rss", "count"):
                v = metric(s, impl, f"{st}.{k}")
                check(isinstance(v, (int, float)) and v >= 0, f"sync: {impl} {st}.{k} missing or negative: {v}")
        check((metric(s, impl, "fresh.bytes") or 0) > 0, f"sync: {impl} has no fresh map")
        counts = [metric(s, impl, st + ".count") for st in ("filled", "deleted99", "deletedall", "round2_missed")]
        check(counts == [n, (n + 99) // 100, 0, 2], f"sync: {impl} counts {counts}")
    m = lambda k: metric(s, "hmap_sync", k)
    for k in ("deleted99.reclaimed_bytes", "deletedall.reclaimed_bytes", "filled.live", "deleted99.live"):
        check(m(k) is not None, f"sync: hmap_sync {k} missing")
    # right after the deletes the shards' last old arrays may still wait for hmap_sync_reclaim (~7% at 20k)
    check(m("deleted99.bytes") < m("filled.bytes") / 4 and m("deleted99.reclaimed_bytes") < m("filled.bytes") / 10,
          f"sync: hmap_sync's bytes did not fall after the deletes ({m('filled.bytes')} -> {m('deleted99.bytes')}, "
          f"{m('deleted99.reclaimed_bytes')} after hmap_sync_reclaim)")
    check(m("deleted99.live") < m("filled.live") / 10, "sync: the library's live bytes did not fall after the deletes")
    check(m("deleted99.reclaimed_bytes") <= 2.5 * m("fresh.bytes"),
          "sync: hmap_sync holds more than 2.5x a fresh hmap_sync after hmap_sync_reclaim")
    check(m("deletedall.reclaimed_bytes") < m("deleted99.reclaimed_bytes"),
          "sync: hmap_sync's bytes did not fall after deleting all")
    if not sanitized:
        check(m("deleted99.rss_released") < m("filled.rss"), "sync: hmap_sync's RSS did not fall after the deletes")
    if go and metric(s, "go", "inside") == 1:
        g = lambda k: metric(s, "go", k)
        check(g("filled.read_live") + g("filled.dirty") >= n, "sync: sync.Map's two maps lack filled keys")
        check(g("deleted99.read_live") + g("deleted99.dirty") >= (n + 99) // 100,
              "sync: sync.Map's two maps lack the survivors")
        check(g("round2_missed.read_live") == 2, "sync: sync.Map's read map does not hold the last 2 keys")


class Report(html.parser.HTMLParser):
    """Counts <svg> elements per <section id=...>, and checks that tags nest."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "line", "rect", "circle", "polyline", "path"}

    def __init__(self):
        super().__init__()
        self.stack, self.sections, self.current, self.errors = [], {}, None, []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.current = dict(attrs).get("id")
            self.sections[self.current] = 0
        if tag == "svg" and self.current:
            self.sections[self.current] += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag == "svg" and self.current:
            self.sections[self.current] += 1

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "section":
            self.current = None


def main():
    lab, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    p = run(lab, ["--help"], work)
    check(p.returncode == 0 and all(e in p.stdout for e in EXPERIMENTS), "--help does not list every experiment")
    p = run(lab, ["--no-such-option"], work)
    check(p.returncode == 2, f"an unknown option exits {p.returncode}, not 2")
    p = run(lab, ["grow", "--n"], work)
    check(p.returncode == 2, "--n without a value is accepted")

    for name, n in EXPERIMENTS.items():
        out = os.path.join(work, name + ".json")
        p = run(lab, [name, "--n", str(n), "--json", out], work)
        check(p.returncode == 0, f"{name} exited {p.returncode}: {p.stderr[-500:]}")
        if p.returncode != 0:
            continue
        check_terminal(name, p.stdout)
        with open(out) as f:
            doc = json.load(f)
        check_section(name, doc["experiments"][name], doc["sanitized"])
        print(f"ok: {name} (go: {go_ran(doc['experiments'][name])})")

    report, out = os.path.join(work, "report.html"), os.path.join(work, "tour.json")
    p = run(lab, ["--quick", "--report", report, "--json", out], work)
    check(p.returncode == 0, f"the quick tour exited {p.returncode}: {p.stderr[-500:]}")
    if p.returncode == 0:
        check_terminal("tour", p.stdout)
        check(report in p.stdout, "the tour does not print the report's path")
        parser = Report()
        with open(report) as f:
            parser.feed(f.read())
        check(not parser.errors, f"report: badly nested HTML: {parser.errors[:3]}")
        check(not parser.stack or parser.stack == [], f"report: unclosed tags {parser.stack[:5]}")
        for name in EXPERIMENTS:
            check(parser.sections.get(name, 0) >= 1, f"report: section {name} has no <svg>")
        with open(out) as f:
            doc = json.load(f)
        check(set(doc["experiments"]) == set(EXPERIMENTS), f"tour: experiments {sorted(doc['experiments'])}")
        claims = sum(len(s["claims"]) for s in doc["experiments"].values())
        check(len(doc["summary"]) == claims and claims > 0, "tour: the summary does not hold every claim")
        print(f"ok: tour, {claims} claims, sections {parser.sections}")
    print(f"{len(failures)} failed" if failures else "lab smoke test passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
