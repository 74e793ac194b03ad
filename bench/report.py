"""Folding the benchmark's rounds into figures, and the printed report (also latest.json)."""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

from bench.measure import percentile

E2E_TARGET = 0.6
P99_TARGET_MS = 50.0
_SUMMED = ("acked", "non_200", "posted", "lost", "duplicated", "unexpected_posts")


def latency_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool the paced runs' samples: one p50/p99 over every message."""
    lat = [x for r in runs for x in r["_lat_ms"]]
    ack = [x for r in runs for x in r["_ack_ms"]]
    late = [x for r in runs for x in r["_late_ms"]]
    statuses: Counter[str] = Counter()
    for r in runs:
        statuses.update(r["statuses"])
    return {
        "offered_per_s": [r["offered_per_s"] for r in runs],
        "achieved_per_s": [r["achieved_per_s"] for r in runs],
        "messages": len(lat), "statuses": dict(statuses),
        "lost": sum(r["lost"] for r in runs), "duplicated": sum(r["duplicated"] for r in runs),
        "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(max(lat, default=float("nan")), 2),
        "ack_p50_ms": round(percentile(ack, 50), 2), "ack_p99_ms": round(percentile(ack, 99), 2),
        "client_late_p99_ms": round(percentile(late, 99), 2),
        "slow_over_50ms": sum(1 for x in lat if x > 50),
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One app's rounds: mean rates (and each round's), summed counts, worst memory."""
    out: dict[str, Any] = {
        "msg_per_s": round(mean(r["msg_per_s"] for r in runs), 1),
        "msg_per_s_rounds": [r["msg_per_s"] for r in runs],
        "wrk_req_per_s": round(mean(r["wrk_req_per_s"] for r in runs), 1),
        "ack_p50_ms": round(mean(r["ack_p50_ms"] for r in runs), 2),
        "ack_p99_ms": round(mean(r["ack_p99_ms"] for r in runs), 2),
        "cpu": {k: round(mean(r["cpu"].get(k, 0.0) for r in runs), 2) for k in runs[0]["cpu"]},
        "rss_mib": max(r["rss_mib"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }
    for key in _SUMMED:
        if key in runs[0]:
            out[key] = sum(int(r[key]) for r in runs)
    errors: Counter[str] = Counter()
    for r in runs:
        errors.update(r["socket_errors"])
    out["socket_errors"] = dict(errors)
    if "variant" in runs[0]:
        for key in ("variant", "label", "store", "instances", "synchronous"):
            if key in runs[0]:
                out[key] = runs[0][key]
        if "rss_mib_instances" in runs[0]:
            out["rss_mib_instances"] = [max(col) for col in zip(
                *(r["rss_mib_instances"] for r in runs), strict=True)]
        out["latency"] = latency_summary([r["latency"] for r in runs])
        out["drain_s"] = max(r["drain_s"] for r in runs)
        out["exit_codes"] = [r["exit_code"] for r in runs]
        db_keys = ("committed", "acked_not_committed", "committed_not_posted",
                   "posted_not_committed", "posted_not_marked_posted", "leases_left")
        out["db"] = {k: sum(r["db"][k] for r in runs) for k in db_keys if k in runs[0]["db"]}
        outbox: Counter[str] = Counter()
        for r in runs:
            outbox.update(r["db"]["outbox"])
        out["db"]["outbox"] = dict(outbox)
        out["cpu_ms_per_msg"] = {k: round(mean(r["cpu_ms_per_msg"].get(k, 0.0) for r in runs), 3)
                                 for k in runs[0].get("cpu_ms_per_msg", {})}
        counters = [r["store_counters"] for r in runs if r.get("store_counters")]
        if counters:
            out["store_counters"] = {k: round(mean(c.get(k, 0.0) for c in counters), 2)
                                     for k in counters[0]}
        profiles = [r["profile"] for r in runs if "profile" in r]
        if profiles:
            out["profile"] = profiles[0]
    out["rounds"] = [{**r, "latency": latency_summary([r["latency"]])} if "latency" in r else r
                     for r in runs]
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def add_ratios(results: dict[str, Any]) -> dict[str, Any]:
    bare, raw, sdk = (results[k] for k in ("bare", "relay-raw", "relay-sdk"))
    ratios: dict[str, Any] = {
        "relay_raw_over_bare": _ratio(raw["msg_per_s"], bare["msg_per_s"]),
        "relay_sdk_over_bare": _ratio(sdk["msg_per_s"], bare["msg_per_s"]),
    }
    for key, value in results.items():
        if key.startswith("bridge-"):
            per_round = [_ratio(b, r) for b, r in zip(value["msg_per_s_rounds"],
                                                      raw["msg_per_s_rounds"], strict=False)]
            ratios[key] = {"e2e_over_relay_raw": _ratio(value["msg_per_s"], raw["msg_per_s"]),
                           "e2e_over_relay_raw_rounds": per_round,
                           "e2e_over_relay_sdk": _ratio(value["msg_per_s"], sdk["msg_per_s"]),
                           "e2e_over_bare": _ratio(value["msg_per_s"], bare["msg_per_s"])}
    results["ratios"] = ratios
    results["summary"] = [summary_row(value, ratios[key]) for key, value in results.items()
                          if key.startswith("bridge-")]
    return results


def summary_row(r: dict[str, Any], q: dict[str, Any]) -> dict[str, Any]:
    """One variant in the summary table (also in latest.json as `summary`)."""
    lat = r["latency"]
    return {"variant": r["variant"], "label": r["label"], "instances": r["instances"],
            "msg_per_s": r["msg_per_s"], "x_relay_raw": q["e2e_over_relay_raw"],
            "x_relay_sdk": q["e2e_over_relay_sdk"], "p50_ms": lat["p50_ms"],
            "p99_ms": lat["p99_ms"], "lost": r["lost"], "duplicated": r["duplicated"],
            "rss_mib": r["rss_mib"]}


def _summary(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", f"{'variant':16}{'msg/s':>8}{'x b1':>7}{'x b2':>7}{'p50 ms':>9}{'p99 ms':>9}"
                 f"{'lost':>7}{'dup':>7}  RSS MiB"]
    for x in rows:
        rss = f"{x['rss_mib']:.0f}" + (f" ({x['instances']} processes)"
                                        if x["instances"] > 1 else "")
        lines.append(f"{x['label']:16}{x['msg_per_s']:>8.0f}{x['x_relay_raw']:>7.2f}"
                     f"{x['x_relay_sdk']:>7.2f}{x['p50_ms']:>9.1f}{x['p99_ms']:>9.1f}"
                     f"{x['lost']:>7}{x['duplicated']:>7}  {rss}")
    return lines


def _cpu(cpu: dict[str, float]) -> str:
    return " ".join(f"{name}={share:.2f}" for name, share in cpu.items())


def _counter_line(c: dict[str, float]) -> str:
    """The PostgreSQL store's own counters (asyncpg round trips), per message acknowledged."""
    return (f"; to PostgreSQL per message: {c.get('round_trips_per_msg', 0):.2f} round trips"
            f" ({c.get('write_round_trips_per_msg', 0):.2f} writing), "
            f"{c.get('transactions_per_msg', 0):.2f} transactions; "
            f"{c.get('ops_per_batch', 0):.1f} writes per group commit")


def _bridge_lines(r: dict[str, Any], q: dict[str, Any]) -> list[str]:
    lat = r["latency"]
    ok_rate = "ok" if q["e2e_over_relay_raw"] >= E2E_TARGET else "below target"
    ok_p99 = "ok" if lat["p99_ms"] < P99_TARGET_MS else "above target"
    offered = "/".join(f"{x:.0f}" for x in lat["offered_per_s"])
    rounds = ", ".join(f"{x:.2f}" for x in q["e2e_over_relay_raw_rounds"])
    db = r["db"]
    return [
        "",
        f"bridge, {r['label']}:",
        f"  end to end {r['msg_per_s']:.0f} msg/s = {q['e2e_over_relay_raw']:.2f} x relay (b1)"
        f" (rounds: {rounds}) [target >= {E2E_TARGET}: {ok_rate}]; {q['e2e_over_relay_sdk']:.2f}"
        f" x (b2); {q['e2e_over_bare']:.2f} x bare; outbox drained <= {r['drain_s']:.1f} s"
        " after wrk stopped",
        f"  latency webhook -> Slack post at {offered}/s (half rate, {lat['messages']} msgs): "
        f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms "
        f"[target p99 < {P99_TARGET_MS:g} ms: {ok_p99}]; webhook answered p50 "
        f"{lat['ack_p50_ms']:.1f} / p99 {lat['ack_p99_ms']:.1f} ms; {lat['slow_over_50ms']} "
        f"over 50 ms; client sends late p99 {lat['client_late_p99_ms']:.1f} ms",
        f"  acked {r['acked']}, posted {r['posted']}, lost {r['lost']}, duplicated "
        f"{r['duplicated']}, non-200 {r['non_200']}, socket errors {r['socket_errors'] or 0}, "
        f"unexpected posts {r['unexpected_posts']}",
        f"  store after stop: committed {db['committed']}, committed not posted "
        f"{db['committed_not_posted']}, posted not marked posted "
        f"{db['posted_not_marked_posted']}, outbox {db['outbox']}"
        + (f", lease rows left {db['leases_left']}" if "leases_left" in db else "")
        + f"; exit codes {r['exit_codes']}",
        "  CPU per message: " + ", ".join(f"{k} {ms:.3f} ms" for k, ms in
                                          r.get("cpu_ms_per_msg", {}).items())
        + (_counter_line(r["store_counters"]) if r.get("store_counters") else ""),
        f"  RSS {r['rss_mib']:.0f} MiB, peak {r['peak_rss_mib']:.0f} MiB"
        + (" (sum of the instances: " + " + ".join(f"{x:.0f}" for x in
                                                    r["rss_mib_instances"]) + ")"
           if "rss_mib_instances" in r else ""),
    ]


def render(results: dict[str, Any]) -> str:
    add_ratios(results)
    s = results["settings"]
    m = results["machine"]
    lines = [
        "",
        f"support bridge benchmark: {m['cpus']} CPUs, Python {m['python']}, aiohttp "
        f"{m['aiohttp']}, SQLite DB on {m['tmp_fs']}; {s.get('cpu_split', s['app_cpus'])}",
        f"load: wrk 1 thread x {s['connections']} connections, {s['rounds']} round(s) of "
        f"{s['duration_s']:g} s per app, {s['chats']} chats; paced latency "
        f"{s['latency_duration_s']:g} s per bridge run",
    ]
    code = results.get("code")
    if code:
        changed = f"; uncommitted: {', '.join(code['changed'])}" if code["changed"] else ""
        lines.append(f"code: {code['commit']}{changed}")
    pgs = results.get("postgres")
    if pgs:
        lines.append(f"postgresql {pgs.get('server_version', '?')}: pool_size "
                     f"{pgs['pool_size']} per instance, fsync {pgs.get('fsync')}, "
                     f"synchronous_commit {pgs.get('synchronous_commit')}, commit_delay "
                     f"{pgs.get('commit_delay')}; server not pinned (shared with the machine)")
    lines += [
        "",
        f"{'':34}{'msg/s':>9}{'acked/s':>9}{'ack p50/p99 ms':>16}  CPU (cores)",
    ]
    labels = {"bare": "(a)  bare aiohttp ceiling", "relay-raw": "(b1) relay ceiling, raw aiohttp",
              "relay-sdk": "(b2) relay ceiling, slack_sdk"}
    rows = [(k, labels[k]) for k in ("bare", "relay-raw", "relay-sdk")]
    rows += [(k, f"(c)  bridge, {v['label']}") for k, v in results.items()
             if k.startswith("bridge-")]
    for key, label in rows:
        r = results[key]
        ack = f"{r['ack_p50_ms']:.1f}/{r['ack_p99_ms']:.1f}"
        lines.append(f"{label:34}{r['msg_per_s']:>9.0f}{r['wrk_req_per_s']:>9.0f}{ack:>16}  "
                     f"{_cpu(r['cpu'])}")
        if len(r["msg_per_s_rounds"]) > 1:
            lines[-1] += "  rounds: " + "/".join(f"{x:.0f}" for x in r["msg_per_s_rounds"])
    ratios = results["ratios"]
    lines += ["", f"relay (b1) / bare (a) = {ratios['relay_raw_over_bare']:.2f}   "
                  f"(b2) / (a) = {ratios['relay_sdk_over_bare']:.2f}"]
    for key, _ in rows[3:]:
        r = results[key]
        lines += _bridge_lines(r, ratios[key])
        if "profile" in r:
            prof = r["profile"]
            lines.append(f"  py-spy ({prof['samples']} busy samples), top of stack:")
            lines += [f"    {pct:5.1f}%  {name}" for name, pct in prof["self_pct"][:12]]
            lines.append("  by package: " + ", ".join(
                f"{name} {pct}%" for name, pct in prof["packages_pct"]))
    raw = results["relay-raw"]
    if "latency" in raw:
        lat = raw["latency"]
        lines += ["", f"relay (b1) at the same {lat['offered_per_s'][0]:.0f}/s: p50 "
                      f"{lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max "
                      f"{lat['max_ms']:.1f} ms (the floor: stand-in, loopback, one Python hop)"]
    for key in ("relay-raw", "relay-sdk"):
        r = results[key]
        if r.get("lost") or r.get("duplicated") or r.get("non_200"):
            lines.append(f"warning: {key} lost {r.get('lost')}, duplicated "
                         f"{r.get('duplicated')}, non-200 {r.get('non_200')}")
    lines += _summary(results["summary"])
    lines += ["", f"total {results['elapsed_s']:.0f} s; figures in bench/results/latest.json",
              ""]
    return "\n".join(lines)
