#!/usr/bin/env python3
"""Peer comparison: Schemathesis 4.x's stateful phase against the example shop server.

    python3 bench/peers/schemathesis_run.py --schemathesis PATH --shop PATH_TO_SHOP \\
        --bug {none,voucher_oversell,long_name,cancel_drops_total} --budget SECONDS [--workdir DIR]

Starts the shop on a fresh SQLite file with the seeded bug switched on, signs up one user
and adds the catalogue venomqa's exploration starts from (product W-1, voucher WELCOME),
dumps the database (the baseline), runs `schemathesis run --phases stateful --checks all
--max-time BUDGET` against the served spec, dumps the database again, stops the server,
and prints one JSON line on stdout; everything else goes to stderr.

Standard library only; the schemathesis executable comes from scripts/schemathesis.sh.

How the fields are measured:

- found: a check failure matching the bug's signature is in Schemathesis's NDJSON event
  stream (every check failure it records, which is what its report prints):
  voucher_oversell: a response-schema failure mentioning `stock`, or any failure whose
  response carries a negative `stock`; long_name: any failure on POST /users answered 500;
  cancel_drops_total: a response-schema failure mentioning `total_cents`. For `none`,
  found means Schemathesis reported any failure at all (all are false positives or
  findings that are not seeded bugs) and the times refer to its first failure.
- time_to_first_s: from launching Schemathesis to the timestamp Schemathesis itself put on
  the first matching response (its recorder stamps each interaction). Exact to the
  request, so time_is_exact is true; it is false only when the event stream is missing and
  the run's wall time stands in. When nothing matched, time_to_first_s is null and
  time_is_exact says whether that "not within the budget" rests on the event stream.
- sequence_len: the number of `curl` lines in the "Reproduce with" block that Schemathesis
  prints for the matching failure (after shrinking); failing that, the length of the
  recorded parent chain of the first matching case; null if neither exists.
- db_clean: every table's rows, sorted, are the same after the run as at the baseline.
- wall_s: Schemathesis's own wall time, from launch to exit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ADMIN_KEY = "shop-admin-key"
BUGS = ("none", "voucher_oversell", "long_name", "cancel_drops_total")
# Past the budget, how long Schemathesis may take to shrink and report before it is stopped.
GRACE_S = 120.0


def log(*parts: object) -> None:
    print("schemathesis_run:", *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The shop server


class Shop:
    def __init__(self, binary: str, db: Path, bug: str, workdir: Path) -> None:
        env = dict(os.environ)
        env.pop("SHOP_BUG", None)
        for name in ("SHOP_DATABASE_URL", "SHOP_PORT", "SHOP_ADMIN_KEY"):
            env.pop(name, None)
        if bug != "none":
            env["SHOP_BUG"] = bug
        self.stderr_path = workdir / "shop.stderr"
        self._stderr = open(self.stderr_path, "wb")
        cmd = [binary, "--db", f"sqlite://{db}", "--port", "0", "--admin-key", ADMIN_KEY]
        log("starting", *([f"SHOP_BUG={bug}"] if bug != "none" else []), *cmd)
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, cwd=workdir)
        self._first_line: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(60):
            self.stop()
            raise SystemExit(f"shop did not print its address within 60 s; see {self.stderr_path}")
        line = self._first_line[0] if self._first_line else ""
        m = re.match(r"listening on (127\.0\.0\.1:\d+)", line)
        if not m:
            self.stop()
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"shop did not start (first line {line!r}); its stderr:\n{tail}")
        self.base = f"http://{m.group(1)}"
        log("shop listening at", self.base)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not self._ready.is_set():
                self._first_line.append(raw.decode(errors="replace").strip())
                self._ready.set()
        self._ready.set()  # EOF: the server died before printing

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def call(base: str, method: str, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def setup(base: str) -> str:
    """The starting catalogue: one user (its token is returned), product W-1, voucher WELCOME."""
    admin = {"X-Api-Key": ADMIN_KEY}
    steps = [
        ("POST", "/users", {"email": "sa@example.com", "name": "Sa"}, None),
        ("POST", "/products", {"sku": "W-1", "name": "Widget", "price_cents": 250, "stock": 5}, admin),
        ("POST", "/vouchers", {"code": "WELCOME", "amount_cents": 10000}, admin),
    ]
    token = None
    for method, path, body, headers in steps:
        status, answer = call(base, method, path, body, headers)
        if status != 201:
            raise SystemExit(f"setup: {method} {path} answered {status}: {answer}")
        if path == "/users":
            token = answer["token"]  # type: ignore[index]
    assert token
    return token


# ---------------------------------------------------------------------------------------
# The database


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, read through a connection of our own."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for t in tables:
            rows = con.execute(f'SELECT * FROM "{t}"').fetchall()
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def describe_diff(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> str:
    parts = []
    for t in sorted(set(before) | set(after)):
        b, a = before.get(t, []), after.get(t, [])
        if b != a:
            bs, as_ = set(map(repr, b)), set(map(repr, a))
            parts.append(f"{t}: {len(b)}->{len(a)} rows (+{len(as_ - bs)} -{len(bs - as_)})")
    return "; ".join(parts) or "no change"


# ---------------------------------------------------------------------------------------
# Schemathesis


def version_of(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    return m.group(1) if m else out.strip()


def run_schemathesis(exe: str, base: str, token: str, budget: float, workdir: Path,
                     seed: int | None, phases: str) -> tuple[float, float, int | None, str, bool, Path, Path]:
    """Run the stateful phase; returns (started, wall_s, exit code, stdout, killed, ndjson, junit)."""
    ndjson = workdir / "schemathesis-events.ndjson"
    junit = workdir / "schemathesis-junit.xml"
    for p in (ndjson, junit):
        p.unlink(missing_ok=True)
    cmd = [
        exe, "run", f"{base}/openapi.yaml",
        "--phases", phases,
        "--checks", "all",
        "--max-time", str(max(1, int(round(budget)))),
        "--header", f"Authorization: Bearer {token}",
        "--header", f"X-Api-Key: {ADMIN_KEY}",
        "--report", "junit,ndjson",
        "--report-junit-path", str(junit),
        "--report-ndjson-path", str(ndjson),
        "--generation-database", "none",
        "--no-color",
    ]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    shown = [("Authorization: Bearer ***" if c.startswith("Authorization:") else c) for c in cmd]
    log("running", " ".join(shown))
    out_path = workdir / "schemathesis.stdout"
    lines: list[str] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
    started = time.time()
    t0 = time.monotonic()
    with open(out_path, "w", encoding="utf-8") as out_file:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                                start_new_session=True)
        killed = False

        def watchdog() -> None:
            nonlocal killed
            deadline = budget + GRACE_S
            while proc.poll() is None:
                if time.monotonic() - t0 > deadline:
                    killed = True
                    log(f"schemathesis still running {deadline:.0f} s after launch: interrupting it")
                    try:
                        os.killpg(proc.pid, signal.SIGINT)
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    return
                time.sleep(0.2)

        threading.Thread(target=watchdog, daemon=True).start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            out_file.write(line)
            sys.stderr.write("  | " + line)
        code = proc.wait()
    wall = time.monotonic() - t0
    log(f"schemathesis exited {code} after {wall:.2f} s")
    return started, wall, code, "".join(lines), killed, ndjson, junit


# ---------------------------------------------------------------------------------------
# Reading what Schemathesis reported


def b64_text(value: object) -> str:
    if isinstance(value, dict) and "$base64" in value:
        return base64.b64decode(value["$base64"]).decode(errors="replace")
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value)


def negative_stock(value: object) -> bool:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "stock" and isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
                return True
            if negative_stock(v):
                return True
    elif isinstance(value, list):
        return any(negative_stock(v) for v in value)
    return False


class Hit:
    """One check failure Schemathesis recorded."""

    def __init__(self, check: str, failure: dict, case: dict, interaction: dict | None, chain_len: int) -> None:
        self.check = check
        self.code = failure.get("code") or ""
        self.title = failure.get("title") or failure.get("type") or check
        self.message = failure.get("message") or ""
        value = case.get("value", {})
        self.case_id = value.get("id")
        self.operation = f"{value.get('method', '?')} {value.get('path', '?')}"
        response = (interaction or {}).get("response") or {}
        self.status = response.get("status_code")
        self.body = b64_text(response.get("content"))
        self.timestamp = (interaction or {}).get("timestamp")
        self.chain_len = chain_len

    def short(self) -> str:
        status = f" [{self.status}]" if self.status is not None else ""
        return f"{self.code} {self.title}: {self.operation}{status}".strip()

    def matches(self, bug: str) -> bool:
        schema = self.check == "response_schema_conformance" or self.code == "ST108"
        if bug == "voucher_oversell":
            if schema and schema_violation_names(self.message, "stock"):
                return True
            try:
                return negative_stock(json.loads(self.body))
            except ValueError:
                return False
        if bug == "long_name":
            return self.operation == "POST /users" and self.status == 500
        if bug == "cancel_drops_total":
            return schema and schema_violation_names(self.message, "total_cents")
        return True  # none: any failure


def schema_violation_names(message: str, field: str) -> bool:
    """Whether a schema violation is about `field`: its validator message names it, or the
    violated subschema is that property's. (The rest of the message prints the whole
    schema and value, where every field of the object appears.)"""
    summary = message.strip().split("\n\n", 1)[0]
    if re.search(rf"['\"]{re.escape(field)}['\"]", summary):
        return True
    m = re.search(r"^\s*Schema at (\S+?):?\s*$", message, re.M)
    return bool(m and m.group(1).rstrip(":").endswith(f"/properties/{field}"))


def read_hits(ndjson: Path) -> list[Hit]:
    hits: list[Hit] = []
    if not ndjson.exists():
        return hits
    with open(ndjson, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith('{"ScenarioFinished"'):
                continue
            try:
                rec = json.loads(line)["ScenarioFinished"].get("recorder", {})
            except ValueError:
                continue
            cases = rec.get("cases", {})
            interactions = rec.get("interactions", {})
            for case_id, checks in rec.get("checks", {}).items():
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    chain, cur = 0, case_id
                    while cur is not None and cur in cases and chain < 10_000:
                        chain += 1
                        cur = cases[cur].get("parent_id")
                    hits.append(Hit(check.get("name", "?"), failure, cases.get(case_id, {}),
                                    interactions.get(case_id), chain))
    hits.sort(key=lambda h: h.timestamp if h.timestamp is not None else float("inf"))
    return hits


def printed_blocks(stdout: str) -> list[tuple[str, str]]:
    """(case id, text) of each failure block in the FAILURES section of Schemathesis's output."""
    section = stdout.split("= FAILURES =", 1)[-1].split("= SUMMARY =", 1)[0]
    heads = list(re.finditer(r"^\s*\d+\. Test Case ID: (\S+)\s*$", section, re.M))
    blocks = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(section)
        blocks.append((m.group(1), section[m.start():end]))
    return blocks


def block_matches(text: str, bug: str) -> bool:
    """The fallback when there is no event stream: the printed failure block's signature."""
    violation = text.split("- ST108 Response violates schema", 1)
    if bug == "voucher_oversell":
        return (len(violation) == 2 and schema_violation_names(violation[1], "stock")) or bool(
            re.search(r'"stock"\s*:\s*-\d', text))
    if bug == "long_name":
        return "[500]" in text and re.search(r"curl -X POST .*?/users\s*$", text, re.M) is not None
    if bug == "cancel_drops_total":
        return len(violation) == 2 and schema_violation_names(violation[1], "total_cents")
    return True


def curl_count(text: str) -> int | None:
    n = sum(1 for line in text.splitlines() if line.strip().startswith("curl "))
    return n or None


# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemathesis", required=True, help="the schemathesis executable")
    ap.add_argument("--shop", required=True, help="the shop server binary")
    ap.add_argument("--bug", required=True, choices=BUGS)
    ap.add_argument("--budget", required=True, type=float, help="seconds (Schemathesis's --max-time)")
    ap.add_argument("--workdir", help="default: a new temporary directory, removed afterwards")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    ap.add_argument("--seed", type=int, help="passed to Schemathesis's --seed")
    ap.add_argument("--phases", default="stateful",
                    help="Schemathesis's --phases (default: stateful, the phase this comparison is about)")
    args = ap.parse_args()

    exe = os.path.abspath(shutil.which(args.schemathesis) or args.schemathesis)
    shop_bin = str(Path(args.shop).resolve())
    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="schemathesis-shop-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log("workdir", workdir)
    version = version_of(exe)
    log("schemathesis", version)

    db = workdir / "shop.sqlite"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)

    shop = Shop(shop_bin, db, args.bug, workdir)
    try:
        token = setup(shop.base)
        baseline = dump(db)
        log("baseline:", ", ".join(f"{t}={len(r)}" for t, r in baseline.items()))
        started, wall, code, stdout, killed, ndjson, junit = run_schemathesis(
            exe, shop.base, token, args.budget, workdir, args.seed, args.phases)
        after = dump(db)
        if shop.proc.poll() is not None:
            log(f"the shop server exited during the run with {shop.proc.returncode}; see {shop.stderr_path}")
    finally:
        shop.stop()

    db_clean = after == baseline
    log("database after the run:", describe_diff(baseline, after))

    hits = read_hits(ndjson)
    have_events = ndjson.exists() and ndjson.stat().st_size > 0
    if not have_events:
        log("no NDJSON event stream: times fall back to the run's wall time")
    failures: list[str] = []
    for h in hits:
        s = h.short()
        if s not in failures:
            failures.append(s)
    blocks = printed_blocks(stdout)
    if not failures and blocks:  # no event stream: list what the output printed
        for _, text in blocks:
            for m in re.finditer(r"^- (ST\d+ [^\n]+)$", text, re.M):
                if m.group(1) not in failures:
                    failures.append(m.group(1))

    matching = [h for h in hits if h.matches(args.bug)]
    printed_ids = {cid for cid, _ in blocks}
    matched_blocks = [text for cid, text in blocks
                      if any(h.case_id == cid for h in matching) or block_matches(text, args.bug)]
    found = bool(matching) or bool(matched_blocks)

    time_to_first: float | None = None
    time_is_exact = have_events
    if matching and matching[0].timestamp is not None:
        first = matching[0]
        time_to_first = round(first.timestamp - started, 3)
        log(f"first matching failure at {time_to_first:.3f} s after launch: {first.short()}"
            f" (case {first.case_id}{', printed' if first.case_id in printed_ids else ''})")
    elif found:
        time_to_first, time_is_exact = round(wall, 3), False
        log("matching failure seen only in the printed report: time is the run's wall time")

    sequence_len: int | None = None
    if matched_blocks:
        sequence_len = curl_count(matched_blocks[0])
    if sequence_len is None and matching:
        sequence_len = matching[0].chain_len or None
        if sequence_len is not None:
            log("no printed reproduction matched: sequence_len is the recorded chain of the first hit")

    if killed:
        log(f"schemathesis overran the budget by more than {GRACE_S:.0f} s and was stopped")
    if code not in (0, 1) and not killed:
        log(f"schemathesis exited {code}: an error, not a test verdict; see {workdir / 'schemathesis.stdout'}")
    log("reports:", ndjson, junit)

    result = {
        "tool": "schemathesis",
        "version": version,
        "bug": args.bug,
        "budget_s": args.budget,
        "found": found,
        "time_to_first_s": time_to_first,
        "time_is_exact": time_is_exact,
        "sequence_len": sequence_len,
        "db_clean": db_clean,
        "failures": failures,
        "wall_s": round(wall, 3),
    }
    if own_tmp and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
