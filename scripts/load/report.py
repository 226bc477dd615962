"""Turns the load harness's raw results into the markdown report.

Called by run.sh; each scenario's result (wrk's, or browser_flow.py's for
the browser sign-in rows, in the same shape) is one JSON line, the
ceilings are `key=value` lines from `cargo bench --bench ceilings`.
"""

import argparse
import json
import os


def load_ceilings(path):
    ceilings = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                key, value = line.strip().split("=", 1)
                ceilings[key] = float(value)
    return ceilings


def main():
    p = argparse.ArgumentParser()
    for name in ["results", "ceilings", "startup", "backend", "integrity"]:
        p.add_argument("--" + name, required=True)
    for name in ["duration", "threads", "connections", "idle-rss", "loaded-rss", "peak-rss", "elapsed"]:
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--denylist", default="?")
    p.add_argument("--audit-dropped", default="0")
    a = p.parse_args()

    results = {}
    with open(a.results) as f:
        for line in f:
            r = json.loads(line)
            results[r["name"]] = r
    c = load_ceilings(a.ceilings)
    n = int(c.get("threads", 2))
    # None when the run skipped the ceilings (run.sh --ceilings none).
    argon = next((k for k in c if k.startswith("argon2id_") and k.endswith(f"_{n}threads")), None)
    with open(a.startup) as f:
        startup = json.load(f)

    # The machine's ceiling for a CPU-bound primitive is the one-core rate
    # times the cores (they scale linearly when the machine is otherwise
    # idle: 2.05x for argon2id, 1.96x for RSA here). The all-core figure is
    # also measured and printed, but another process on the machine drags
    # it down, while the one-core rate is only lowered by it if it ran alone
    # on a core the other was using.
    for key in list(c):
        if key.endswith(f"_per_s_{n}threads") and not key.startswith("fdatasync"):
            one = c.get(key.replace(f"_{n}threads", "_1thread"))
            if one:
                c["machine:" + key] = max(c[key], one * n)

    def ceiling(key):
        return c.get(key)

    # A bound that a request uses more than once: the code exchange signs
    # two JWTs (the access and the ID token), so it can reach at most half
    # the signing rate.
    uses_per_request = {"code_exchange": 2}

    # name: (label, bound key or scenario, bound label, target text, check)
    fsync1 = ceiling("fdatasync_per_s_1thread")
    rows = [
        ("healthz", "GET /healthz (stack baseline)", None, None, "", None),
        ("jwks", "GET /.well-known/jwks.json", "healthz", "GET /healthz req/s", ">= 60,000/s",
         lambda r: r["rps"] >= 60000),
        ("jwks_304", "GET jwks, If-None-Match (304)", "jwks", "JWKS 200 req/s", ">= JWKS 200",
         lambda r: "jwks" in results and r["rps"] >= results["jwks"]["rps"] * 0.98),
        ("cc_rs256", "client_credentials RS256", f"rs256_sign_per_s_{n}threads",
         f"RSA-2048 signs/s, {n} cores", ">= 1,500/s", lambda r: r["rps"] >= 1500),
        ("cc_eddsa", "client_credentials EdDSA", f"eddsa_sign_per_s_{n}threads",
         f"Ed25519 signs/s, {n} cores", ">= 12,000/s", lambda r: r["rps"] >= 12000),
        ("password", "password grant (RS256)", argon, f"argon2id hashes/s, {n} cores",
         ">= 85% of ceiling", (lambda r: r["rps"] >= 0.85 * c[argon]) if argon else None),
        ("refresh_rs256", "refresh grant RS256", f"rs256_sign_per_s_{n}threads",
         f"RSA-2048 signs/s, {n} cores", ">= 1,200/s (Postgres)",
         (lambda r: r["rps"] >= 1200) if a.backend == "postgres" else None),
        ("refresh_eddsa", "refresh grant EdDSA", f"eddsa_sign_per_s_{n}threads",
         f"Ed25519 signs/s, {n} cores", ">= 3,000/s (Postgres)",
         (lambda r: r["rps"] >= 3000) if a.backend == "postgres" else None),
        ("introspect_rs256", "introspection (RS256 token)", f"rs256_verify_per_s_{n}threads",
         f"RS256 verifies/s, {n} cores", ">= 10,000/s", lambda r: r["rps"] >= 10000),
        ("introspect_eddsa", "introspection (EdDSA token)", f"eddsa_verify_per_s_{n}threads",
         f"EdDSA verifies/s, {n} cores", ">= 10,000/s", lambda r: r["rps"] >= 10000),
        ("users_me_rs256", "GET /users/me (RS256 token)", f"rs256_verify_per_s_{n}threads",
         f"RS256 verifies/s, {n} cores", ">= 10,000/s", lambda r: r["rps"] >= 10000),
        ("users_me_eddsa", "GET /users/me (EdDSA token)", f"eddsa_verify_per_s_{n}threads",
         f"EdDSA verifies/s, {n} cores", ">= 10,000/s", lambda r: r["rps"] >= 10000),
        ("revoke", "revocation (access tokens)", "fdatasync_per_s_1thread",
         "fdatasync/s, 1 thread", "(none)", None),
        ("browser_full", "browser sign-in: /authorize, /login, code exchange", argon,
         f"argon2id hashes/s, {n} cores", "", None),
        ("authorize_sso", "GET /authorize with a live session (303 + code)", None, None, "", None),
        ("code_exchange", "code exchange alone (access + ID token)", f"rs256_sign_per_s_{n}threads",
         f"RSA-2048 signs/s, {n} cores, halved (2 per exchange)", "", None),
        ("flood_password", "password grant during the probes", argon,
         f"argon2id hashes/s, {n} cores", "", None),
        ("flood_jwks_probe", "JWKS probe during login flood", None, None, "p99 < 10 ms",
         lambda r: r["p99_ms"] < 10),
        ("flood_refresh_probe", "refresh probe during login flood", None, None, "p99 < 10 ms",
         lambda r: r["p99_ms"] < 10),
        ("flood_browser", "browser sign-ins during the probes", argon,
         f"argon2id hashes/s, {n} cores", "", None),
        ("flood_browser_jwks_probe", "JWKS probe during browser sign-in flood", None, None,
         "p99 < 10 ms", lambda r: r["p99_ms"] < 10),
        ("flood_browser_refresh_probe", "refresh probe during browser sign-in flood", None, None,
         "p99 < 10 ms", lambda r: r["p99_ms"] < 10),
    ]
    browser_rows = ["browser_full", "code_exchange", "flood_browser"]
    refresh_rows = ["refresh_rs256", "refresh_eddsa", "flood_refresh_probe", "flood_browser_refresh_probe"]

    out = []
    browser = [k for k in browser_rows if k in results]
    out.append(f"### Sigil load run: {a.backend}, {a.duration} s per scenario, "
               f"wrk -t{a.threads} -c{a.connections} (probes: -t1 -c2, 10 ms apart)"
               + (f"; browser rows: browser_flow.py, {a.connections} virtual users" if browser else "")
               + "\n")
    out.append("CPU %: share of the whole machine (100% = every core) used during the scenario by the server, "
               "by PostgreSQL's processes, by the load generator (wrk, or browser_flow.py) and by anything "
               "else (for the floods, the probes count as others).\n")
    if browser:
        out.append("Browser rows: req/s counts completed flows (a sign-in, or an exchange), the latency is "
                   "the whole flow's, and non-2xx is every failed flow, whatever the step; the authorize "
                   "row's non-2xx is every answer other than a 303 with a code.\n")
    out.append("| scenario | req/s | p50 ms | p99 ms | non-2xx | bounded by | bound | ratio | target | met "
               "| CPU % sigil / Postgres / wrk / others | RSS MiB after |")
    out.append("|---|---:|---:|---:|---:|---|---:|---:|---|---|---|---:|")
    for name, label, bound_key, bound_label, target, check in rows:
        r = results.get(name)
        if r is None:
            continue
        bound = None
        if bound_key in results:
            bound = results[bound_key]["rps"]
        elif bound_key:
            bound = c.get("machine:" + bound_key, c.get(bound_key))
            if bound:
                bound /= uses_per_request.get(name, 1)
        ratio = f"{r['rps'] / bound:.2f}" if bound else ""
        met = "" if check is None else ("yes" if check(r) else "**no**")
        cpu = (f"{r['server_cpu_pct']} / {r.get('db_cpu_pct', 0)} / {r['wrk_cpu_pct']} / {r['others_cpu_pct']}"
               if "server_cpu_pct" in r else "")
        out.append(
            f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non2xx']} "
            f"| {bound_label or ''} | {'' if bound is None else f'{bound:,.0f}'} | {ratio} | {target} | {met} "
            f"| {cpu} | {r.get('rss_mib', '')} |")

    notes = []
    if fsync1:
        for name in ["refresh_rs256", "refresh_eddsa", "revoke", "authorize_sso"]:
            if name in results:
                notes.append(f"{name}: {results[name]['rps'] / fsync1:.2f}x the 1-thread fdatasync rate "
                             f"({fsync1:,.0f}/s)")
    busy = [f"{r['name']} {r['others_cpu_pct']}%" for r in results.values()
            if r.get("others_cpu_pct", 0) >= 10 and not r["name"].startswith("flood")]

    # Rotation integrity.
    spent, revoked_families, bad_chains = (int(x) for x in a.integrity.split())
    refreshed = sum(results[k]["ok"] for k in refresh_rows if k in results)
    broken = sum(results[k]["broken"] for k in refresh_rows if k in results)
    in_flight_max = 2 * a.connections + 2 + (2 if "flood_browser_refresh_probe" in results else 0)
    rotation_ok = (broken == 0 and revoked_families == 0 and bad_chains == 0
                   and refreshed <= spent <= refreshed + in_flight_max)

    mib = lambda kb: kb / 1024
    out.append("")
    out.append("| measure | value | target | met |")
    out.append("|---|---:|---|---|")
    out.append(f"| idle RSS (after start and seeding) | {mib(a.idle_rss):.1f} MiB | < 30 MiB | "
               f"{'yes' if mib(a.idle_rss) < 30 else '**no**'} |")
    out.append(f"| RSS after the load run | {mib(a.loaded_rss):.1f} MiB | | |")
    out.append(f"| peak RSS during the load run (VmHWM) | {mib(a.peak_rss):.1f} MiB | < 150 MiB | "
               f"{'yes' if mib(a.peak_rss) < 150 else '**no**'} |")
    out.append(f"| deny-list entries after the run (capacity 200,000) | {a.denylist} | bounded by config | |")
    out.append(f"| start-up, existing keys: spawn to `listening` log (median of {startup['runs']}) "
               f"| {startup['listening_ms_median']:.1f} ms | < 300 ms | "
               f"{'yes' if startup['listening_ms_median'] < 300 else '**no**'} |")
    out.append(f"| start-up: spawn to first `/healthz` 200 (median; max) "
               f"| {startup['healthz_ms_median']:.1f} ms; {startup['healthz_ms_max']:.1f} ms | < 300 ms | "
               f"{'yes' if startup['healthz_ms_max'] < 300 else '**no**'} |")
    out.append(f"| refresh rotations answered 200 / tokens spent in the database | {refreshed:,} / {spent:,} "
               f"| no lost or duplicated rotation | {'yes' if rotation_ok else '**no**'} |")
    out.append(f"| broken chains / families revoked as reused / chains without exactly one live token "
               f"| {broken} / {revoked_families} / {bad_chains} | 0 / 0 / 0 | |")
    out.append(f"| audit events dropped | {a.audit_dropped} | 0 | |")
    measured = [f"{k.replace('_per_s_', ' ')} {v:,.0f}/s" for k, v in c.items() if "_per_s_" in k and ":" not in k]
    if measured:  # none with run.sh --ceilings none
        out.append("")
        out.append("Ceilings (cargo bench --bench ceilings, same run, before the load): " + ", ".join(measured)
                   + f". A CPU-bound bound above is the larger of the {n}-thread figure and {n} x the 1-thread one.")
    if notes:
        out.append("")
        out.append("Database-bound rows against a durable commit: " + "; ".join(notes) + ".")
    if busy:
        out.append("")
        out.append("WARNING: other processes took this share of the machine during: " + ", ".join(busy)
                   + " (they competed for the cores; those figures are low).")
    if "code_exchange" in results and results["code_exchange"].get("method"):
        out.append(f"\ncode_exchange, how: {results['code_exchange']['method']} (its CPU shares cover the "
                   "untimed minting too).")
    failed = [f"{k}: " + ", ".join(f"{kind} {count}" for kind, count in sorted(results[k]["errors"].items()))
              for k in browser if results[k].get("errors")]
    if failed:
        out.append("\nBrowser flows that failed, by step and kind: " + "; ".join(failed) + ".")
    reused = results.get("revoke", {}).get("reused", 0)
    if reused:
        out.append(f"\nNote: revocation ran out of fresh tokens {reused} time(s) and revoked some again.")
    out.append(f"\nWhole run: {a.elapsed} s.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
