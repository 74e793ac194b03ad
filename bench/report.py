"""The benchmark's printed report (bench/run.py writes the same figures to latest.json)."""

from __future__ import annotations

from typing import Any

E2E_TARGET = 0.6
P99_TARGET_MS = 50.0


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def add_ratios(results: dict[str, Any]) -> dict[str, Any]:
    bare = float(results["bare"]["msg_per_s"])
    raw = float(results["relay-raw"]["msg_per_s"])
    sdk = float(results["relay-sdk"]["msg_per_s"])
    ratios: dict[str, Any] = {"relay_raw_over_bare": _ratio(raw, bare),
                              "relay_sdk_over_bare": _ratio(sdk, bare)}
    for key, value in results.items():
        if key.startswith("bridge-"):
            e2e = float(value["msg_per_s"])
            ratios[key] = {"e2e_over_relay_raw": _ratio(e2e, raw),
                           "e2e_over_relay_sdk": _ratio(e2e, sdk),
                           "e2e_over_bare": _ratio(e2e, bare)}
    results["ratios"] = ratios
    return results


def _cpu(cpu: dict[str, float]) -> str:
    return " ".join(f"{name}={share:.2f}" for name, share in cpu.items())


def render(results: dict[str, Any]) -> str:
    add_ratios(results)
    s = results["settings"]
    m = results["machine"]
    lines = [
        "",
        f"support bridge benchmark: {m['cpus']} CPUs, Python {m['python']}, aiohttp "
        f"{m['aiohttp']}, DB on {m['tmp_fs']}",
        f"load: wrk 1 thread x {s['connections']} connections, {s['duration_s']:g} s per run, "
        f"{s['chats']} chats; paced latency runs {s['latency_duration_s']:g} s",
        "",
        f"{'':34}{'msg/s':>9}{'acked/s':>9}{'ack p50/p99 ms':>16}  CPU (cores)",
    ]
    labels = {"bare": "(a)  bare aiohttp ceiling", "relay-raw": "(b1) relay ceiling, raw aiohttp",
              "relay-sdk": "(b2) relay ceiling, slack_sdk"}
    rows = [(k, labels[k]) for k in ("bare", "relay-raw", "relay-sdk")]
    rows += [(k, f"(c)  bridge, sqlite {v['synchronous']}") for k, v in results.items()
             if k.startswith("bridge-")]
    for key, label in rows:
        r = results[key]
        ack = f"{r['ack_p50_ms']:.1f}/{r['ack_p99_ms']:.1f}"
        lines.append(f"{label:34}{r['msg_per_s']:>9.0f}{r['wrk_req_per_s']:>9.0f}{ack:>16}  "
                     f"{_cpu(r['cpu'])}")
    ratios = results["ratios"]
    lines += ["", f"relay (b1) / bare (a) = {ratios['relay_raw_over_bare']:.2f}   "
                  f"(b2) / (a) = {ratios['relay_sdk_over_bare']:.2f}"]
    for key, _ in rows[3:]:
        r = results[key]
        q = ratios[key]
        lat = r["latency"]
        verdict_rate = "ok" if q["e2e_over_relay_raw"] >= E2E_TARGET else "below target"
        verdict_p99 = "ok" if lat["p99_ms"] < P99_TARGET_MS else "above target"
        lines += [
            "",
            f"bridge, sqlite {r['synchronous']}:",
            f"  end to end {r['msg_per_s']:.0f} msg/s = {q['e2e_over_relay_raw']:.2f} x relay "
            f"(b1) [target >= {E2E_TARGET}: {verdict_rate}], {q['e2e_over_relay_sdk']:.2f} x "
            f"(b2), {q['e2e_over_bare']:.2f} x bare; outbox drained "
            f"{r['drain_s']:.1f} s after wrk stopped",
            f"  latency webhook -> Slack post at {lat['offered_per_s']:.0f}/s (half rate): "
            f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms"
            f" [target p99 < {P99_TARGET_MS:g} ms: {verdict_p99}]; webhook answered in p50 "
            f"{lat['ack_p50_ms']:.1f} / p99 {lat['ack_p99_ms']:.1f} ms",
            f"  acked {r['acked']}, posted {r['posted']}, lost {r['lost']}, duplicated "
            f"{r['duplicated']}, non-200 {r['non_200']}, socket errors "
            f"{r['socket_errors'] or 0}, unexpected posts {r['unexpected_posts']}",
            f"  store after stop: committed {r['db']['committed']}, committed but not posted "
            f"{r['db']['committed_not_posted']}, posted but not marked posted "
            f"{r['db']['posted_not_marked_posted']}, outbox {r['db']['outbox']}; exit code "
            f"{r['exit_code']}",
            f"  RSS {r['rss_mib']:.0f} MiB, peak {r['peak_rss_mib']:.0f} MiB",
        ]
        if "profile" in r:
            prof = r["profile"]
            lines.append(f"  py-spy ({prof['samples']} busy samples), top of stack:")
            lines += [f"    {pct:5.1f}%  {name}" for name, pct in prof["self_pct"][:10]]
            lines.append("  by package: " + ", ".join(
                f"{name} {pct}%" for name, pct in prof["packages_pct"]))
    raw = results["relay-raw"]
    if "latency" in raw:
        lat = raw["latency"]
        lines += ["", f"relay (b1) at the same {lat['offered_per_s']:.0f}/s: p50 "
                      f"{lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms (the floor: stand-in,"
                      f" loopback, one Python hop)"]
    for key in ("relay-raw", "relay-sdk"):
        r = results[key]
        if r.get("lost") or r.get("duplicated") or r.get("non_200"):
            lines.append(f"warning: {key} lost {r.get('lost')}, duplicated "
                         f"{r.get('duplicated')}, non-200 {r.get('non_200')}")
    lines += ["", f"total {results['elapsed_s']:.0f} s; figures in bench/results/latest.json",
              ""]
    return "\n".join(lines)
