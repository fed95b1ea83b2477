#!/usr/bin/env python3
"""Compares MCP conformance results with the checked-in expectations.

    conformance_compare.py EXPECTED.json RESULTS_DIR RUN [RUN ...]
    conformance_compare.py --update EXPECTED.json RESULTS_DIR RUN [RUN ...]
    conformance_compare.py --self-test

RESULTS_DIR/RUN/server-<scenario>-<timestamp>/checks.json is what `conformance server --suite all
-o RESULTS_DIR/RUN` writes. A scenario *passes* when its checks.json has at least one SUCCESS and no
FAILURE (WARNINGs are printed, not judged).

EXPECTED.json maps each run, then each scenario, to
    {"expect": "pass" | "fail", "success": N, "reason": "why it fails (expected failures only)"}
where N is the number of SUCCESS checks the last accepted run had.

The verdict (exit 1 when any of these holds):
  * a scenario expected to pass fails, or did not run;
  * a scenario's SUCCESS count is below N (a check that passed no longer does).
Reported without failing:
  * a scenario expected to fail now passes, or has more SUCCESS checks ("update the file");
  * a scenario the file does not list (a new scenario of the suite).

--update rewrites EXPECTED.json from the results (reasons of still-failing scenarios are kept; new
failures get "TODO: say why"), for a human to review and commit.
"""

import json
import sys
from pathlib import Path


def scenario_name(dirname: str) -> str:
    """`server-tools-list-2026-12-02T03-20-11-123Z` -> `tools-list`."""
    name = dirname[len("server-"):] if dirname.startswith("server-") else dirname
    parts = name.split("-")
    # the timestamp is the last 6 dash-separated pieces: YYYY MM DDTHH MM SS mmmZ
    return "-".join(parts[:-6]) if len(parts) > 6 else name


def results_of(run_dir: Path) -> dict:
    """scenario -> {"success", "failure", "warning", "failures": [(id, message)], "warnings": [...]}."""
    found = {}
    if not run_dir.is_dir():
        return found
    for d in sorted(run_dir.iterdir()):
        if not d.is_dir() or not d.name.startswith("server-"):
            continue
        path = d / "checks.json"
        if not path.is_file():
            continue  # a scenario the CLI skipped at this spec version
        try:
            checks = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            checks = [{"id": "unreadable-checks-json", "status": "FAILURE", "errorMessage": str(e)}]
        counts = {"success": 0, "failure": 0, "warning": 0, "failures": [], "warnings": []}
        for c in checks:
            status = c.get("status")
            msg = c.get("errorMessage") or c.get("description") or ""
            if status == "SUCCESS":
                counts["success"] += 1
            elif status == "FAILURE":
                counts["failure"] += 1
                counts["failures"].append((c.get("id"), msg))
            elif status == "WARNING":
                counts["warning"] += 1
                counts["warnings"].append((c.get("id"), msg))
        found[scenario_name(d.name)] = counts
    return found


def passed(r: dict) -> bool:
    return r["success"] > 0 and r["failure"] == 0


def short(msg: str, n: int = 200) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 1] + "…"


def compare(expected: dict, results_dir: Path, runs: list) -> int:
    bad, notes = [], []
    for run in runs:
        want = expected.get(run, {})
        got = results_of(results_dir / run)
        n_pass = sum(passed(r) for r in got.values())
        checks = {k: sum(r[k] for r in got.values()) for k in ("success", "failure", "warning")}
        print(f"\nconformance {run}: {len(got)} scenarios, {n_pass} passed, {len(got) - n_pass} failed; "
              f"checks: {checks['success']} success, {checks['failure']} failure, {checks['warning']} warning")
        for name in sorted(set(want) | set(got)):
            w, r = want.get(name), got.get(name)
            if r is None:
                line = f"  {name:48} not run"
                if w and w.get("expect") == "pass":
                    bad.append(f"{run} {name}: expected to pass but did not run")
                    line += "  <-- FAIL"
                print(line)
                continue
            verdict = "pass" if passed(r) else "fail"
            line = f"  {name:48} {verdict:4}  {r['success']:3} ok {r['failure']:3} failed {r['warning']:2} warn"
            if w is None:
                notes.append(f"{run} {name}: not in the expectation file ({verdict}); add it")
                line += "  (new)"
            else:
                if w.get("expect") == "pass" and verdict == "fail":
                    bad.append(f"{run} {name}: expected to pass, failed")
                    line += "  <-- FAIL (expected pass)"
                elif w.get("expect") == "fail" and verdict == "pass":
                    notes.append(f"{run} {name}: expected to fail but passes now; update the file")
                    line += "  (now passes: update the file)"
                elif w.get("expect") == "fail":
                    line += f"  expected: {short(w.get('reason', ''), 90)}"
                if r["success"] < int(w.get("success", 0)):
                    bad.append(f"{run} {name}: {r['success']} successful checks, the file expects {w['success']}")
                    line += "  <-- FAIL (fewer checks pass)"
                elif r["success"] > int(w.get("success", 0)) and verdict == w.get("expect"):
                    notes.append(f"{run} {name}: {r['success']} successful checks, the file says {w.get('success', 0)}; update the file")
            print(line)
            if w is None or w.get("expect") == "pass" or r["success"] < int(w.get("success", 0)):
                for cid, msg in r["failures"]:
                    print(f"      FAILURE {cid}: {short(msg)}")
            for cid, msg in r["warnings"]:
                print(f"      warning {cid}: {short(msg)}")
    print()
    for n in notes:
        print(f"conformance: note: {n}")
    for b in bad:
        print(f"conformance: FAIL: {b}")
    print(f"conformance: {'OK' if not bad else 'WORSE THAN THE EXPECTATION FILE'} "
          f"({len(bad)} regressions, {len(notes)} notes)")
    return 1 if bad else 0


def update(path: Path, expected: dict, results_dir: Path, runs: list) -> None:
    for run in runs:
        old = expected.get(run, {})
        new = {}
        for name, r in sorted(results_of(results_dir / run).items()):
            entry = {"expect": "pass" if passed(r) else "fail", "success": r["success"]}
            if entry["expect"] == "fail":
                entry["reason"] = old.get(name, {}).get("reason") or "TODO: say why"
            new[name] = entry
        expected[run] = new
    path.write_text(json.dumps(expected, indent=2) + "\n")
    print(f"conformance: wrote {path}")


def self_test() -> int:
    """The verdict rules on made-up results (run by .ci/conformance.sh before every comparison)."""
    import contextlib
    import io
    import tempfile

    def run(expected, checks_by_scenario):
        with tempfile.TemporaryDirectory() as tmp:
            for name, checks in checks_by_scenario.items():
                d = Path(tmp) / "v" / f"server-{name}-2026-12-02T03-20-11-123Z"
                d.mkdir(parents=True)
                (d / "checks.json").write_text(json.dumps([{"id": f"c{i}", "status": c} for i, c in enumerate(checks)]))
            with contextlib.redirect_stdout(io.StringIO()):
                return compare({"v": expected}, Path(tmp), ["v"])

    ok = {"a": {"expect": "pass", "success": 2}, "b": {"expect": "fail", "success": 1, "reason": "fixture"}}
    cases = [
        ("as expected", ok, {"a": ["SUCCESS", "SUCCESS"], "b": ["SUCCESS", "FAILURE"]}, 0),
        ("expected pass fails", ok, {"a": ["SUCCESS", "FAILURE"], "b": ["SUCCESS", "FAILURE"]}, 1),
        ("fewer checks pass", ok, {"a": ["SUCCESS"], "b": ["SUCCESS", "FAILURE"]}, 1),
        ("fewer checks in an expected failure", ok, {"a": ["SUCCESS", "SUCCESS"], "b": ["FAILURE"]}, 1),
        ("expected pass did not run", ok, {"b": ["SUCCESS", "FAILURE"]}, 1),
        ("expected failure now passes", ok, {"a": ["SUCCESS", "SUCCESS"], "b": ["SUCCESS"]}, 0),
        ("new scenario", ok, {"a": ["SUCCESS", "SUCCESS"], "b": ["SUCCESS", "FAILURE"], "c": ["FAILURE"]}, 0),
        ("warnings only is not a pass", {"a": {"expect": "pass", "success": 0}}, {"a": ["WARNING"]}, 1),
    ]
    bad = [name for name, expected, results, want in cases if run(expected, results) != want]
    assert scenario_name("server-tools-list-2026-12-02T03-20-11-123Z") == "tools-list"
    for name in bad:
        print(f"conformance_compare self-test FAILED: {name}")
    return 1 if bad else 0


def main(argv: list) -> int:
    if argv == ["--self-test"]:
        return self_test()
    do_update = bool(argv) and argv[0] == "--update"
    if do_update:
        argv = argv[1:]
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, results_dir, runs = Path(argv[0]), Path(argv[1]), argv[2:]
    expected = json.loads(path.read_text()) if path.is_file() else {}
    if do_update:
        update(path, expected, results_dir, runs)
        return 0
    return compare(expected, results_dir, runs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
