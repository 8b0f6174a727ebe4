"""Q&A synthesis client benchmark: throughput against the concurrency bound, and kill + restart.

Against the local OpenAI-compatible server (synthesis.testserver, loopback, 200 ms latency):

1. Throughput. Our client (``LLMClient``: semaphore, retries, request cache committed per
   response) vs the peer — the plain ``openai.AsyncOpenAI`` client under an ``asyncio.Semaphore``
   with no cache — on the same prompts (chunks of real laws from ../shared/data), alternating,
   ``--repeats`` times each. Achieved requests/s are compared with the bound
   ``concurrency / latency``; medians and ratios are printed.
2. Crash safety. ``soaes synth run`` (generator llm) in a subprocess is SIGKILLed once about half
   of the requests were answered, then restarted. From the server's per-request counts and the
   cache: requests re-sent for items whose response had been stored (must be 0), items lost
   (must be 0), and requests that were in flight at the kill (re-sent once: their answers died
   with the process).

    .venv/bin/python benchmarks/synthesis.py [--docs 120] [--concurrency 16] [--latency 0.2]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SOAES_SHARED_DATA", REPO.parent / "shared" / "data"))


def _prompts(docs_path: Path, limit: int) -> list[list[dict]]:
    from corpora_manifests.tokenizer import load_tokenizer
    from synthesis.chunking import chunk_documents
    from synthesis.config import SourceConfig
    from synthesis.prompting import load_template
    from synthesis.sources import iter_documents

    tpl = load_template("qa_v1")
    docs = iter_documents(SourceConfig(path=str(docs_path), limit=limit))
    chunks = list(chunk_documents(docs, load_tokenizer("qwen2.5"), 1024))
    return [tpl.render(title=c.title, heading=c.heading, text=c.text, n_pairs=5) for c in chunks]


async def _ours(base_url: str, prompts, concurrency: int, cache_path: Path) -> float:
    from synthesis.config import LLMConfig
    from synthesis.llm_client import LLMClient
    from synthesis.request_cache import RequestCache

    cfg = LLMConfig(base_url=base_url, max_concurrency=concurrency, timeout_s=30)
    client = LLMClient(cfg, "sk-bench", RequestCache(cache_path))
    t = time.perf_counter()
    await asyncio.gather(*(client.complete(p) for p in prompts))
    dt = time.perf_counter() - t
    await client.aclose()
    assert client.usage.completed == len(prompts), client.usage.as_dict()
    return len(prompts) / dt


async def _peer(base_url: str, prompts, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", timeout=30, max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(p):
        async with sem:
            r = await client.chat.completions.create(model="glm-4", messages=p, temperature=0.7, top_p=0.7,
                                                     max_tokens=2048)
            return r.choices[0].message.content

    t = time.perf_counter()
    await asyncio.gather(*(one(p) for p in prompts))
    dt = time.perf_counter() - t
    await client.close()
    return len(prompts) / dt


def throughput(latency: float, prompts, concurrency: int, repeats: int, work: Path) -> dict:
    # The server runs in its own process so that it does not compete with the client for the GIL.
    srv = subprocess.Popen([sys.executable, "-m", "synthesis.testserver", "--latency", str(latency), "--seconds", "900"],
                           cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        base_url = srv.stdout.readline().strip()
        # warm-up (imports, connection pools, first-call costs), discarded
        asyncio.run(_ours(base_url, prompts[:48], concurrency, work / f"warmup_c{concurrency}.sqlite"))
        asyncio.run(_peer(base_url, prompts[:48], concurrency))
        ours, peer = [], []
        for r in range(repeats):
            # a fresh cache each time: every request really goes over HTTP
            ours.append(asyncio.run(_ours(base_url, prompts, concurrency, work / f"bench_cache_c{concurrency}_{r}.sqlite")))
            peer.append(asyncio.run(_peer(base_url, prompts, concurrency)))
    finally:
        srv.terminate()
        srv.wait(10)
    bound = concurrency / latency
    m_ours, m_peer = statistics.median(ours), statistics.median(peer)
    return {"requests": len(prompts), "concurrency": concurrency, "latency_s": latency,
            "bound_rps": bound, "ours_rps": [round(x, 1) for x in ours], "peer_rps": [round(x, 1) for x in peer],
            "ours_median": round(m_ours, 1), "peer_median": round(m_peer, 1),
            "ours_vs_bound": round(m_ours / bound, 3), "peer_vs_bound": round(m_peer / bound, 3),
            "ours_vs_peer": round(m_ours / m_peer, 3)}


def kill_restart(server, docs_path: Path, limit: int, concurrency: int, work: Path) -> dict:
    out = work / "run"
    cfg = REPO / "configs" / "demo" / "synth_stage2.yaml"
    cmd = [sys.executable, "-c", "from soaes.cli import main; main()", "synth", "run", str(cfg), "-o", str(out),
           "--set", "generator=llm", "--set", f"llm.base_url={server.base_url}", "--set", f"source.path={docs_path}",
           "--set", f"source.limit={limit}", "--set", f"llm.max_concurrency={concurrency}",
           "--set", "prompts.report_fraction=0.0", "--set", "review.required=true"]
    env = dict(os.environ, OPENAI_API_KEY="sk-bench-not-a-real-key")
    server.received.clear()
    server.answered.clear()
    server.received_at.clear()
    n_expected = None
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    target = None
    while p.poll() is None and time.monotonic() - t0 < 600:
        # the run sends one request per chunk; kill when half of them were answered
        if target is None and server.received:
            target = KILL_AT
        if target is not None and sum(server.answered.values()) >= target:
            os.kill(p.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    p.wait(60)
    killed = p.returncode == -signal.SIGKILL
    received_before = dict(server.received)
    answered_before = sum(server.answered.values())
    db = sqlite3.connect(out / "cache" / "llm_cache.sqlite")
    cached_before = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    db.close()
    mark = len(server.received_at)
    r2 = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if r2.returncode != 0:
        raise SystemExit(f"restart failed: {r2.stderr[-2000:]}")
    after = {k: n - received_before.get(k, 0) for k, n in server.received.items()}
    times = server.received_at[mark:]
    from corpora_manifests.models import load_manifest

    m = load_manifest(out / "sft_stage2")
    usage = m.producer.usage
    n_items = len(server.received)
    db = sqlite3.connect(out / "cache" / "llm_cache.sqlite")
    cached_final = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    db.close()
    resent_after = sum(after.values())
    return {
        "killed_with_sigkill": killed, "items": n_items,
        "answered_before_kill": answered_before, "cached_before_kill": cached_before,
        "in_flight_at_kill": sum(received_before.values()) - cached_before,
        "requests_after_restart": resent_after,
        "resent_finished_items": resent_after - (n_items - cached_before),
        "max_requests_per_item_after_restart": max(after.values() or [0]),
        "items_lost": n_items - cached_final,
        "restart_cache_hits": usage.get("cache_hits"), "restart_completed": usage.get("completed"),
        "restart_rps_server_side": round((len(times) - 1) / (times[-1] - times[0]), 1) if len(times) > 1 else None,
        "valid_items_in_store": m.stats["synthesis"]["valid_items"],
    }


KILL_AT = 0


def main() -> None:
    global KILL_AT
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=120, help="laws to chunk (≈4.5 chunks = requests each)")
    ap.add_argument("--concurrency", default="8,16", help="comma-separated bounds to measure (8 = config default)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-crash", action="store_true", help="measure throughput only")
    a = ap.parse_args()
    laws = SHARED / "lawrefbook_laws" / "laws.jsonl"
    if not laws.exists():
        raise SystemExit(f"needs ../shared/data (not found: {laws})")
    from synthesis.testserver import FakeChatServer

    with tempfile.TemporaryDirectory() as d, FakeChatServer(latency_s=a.latency) as server:
        work = Path(d)
        prompts = _prompts(laws, a.docs)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {len(prompts)} prompts "
              f"from {a.docs} laws; server latency {a.latency}s, concurrency {a.concurrency}", flush=True)
        levels = [int(x) for x in str(a.concurrency).split(",")]
        tps = []
        for c in levels:
            tp = throughput(a.latency, prompts, c, a.repeats, work)
            tps.append(tp)
            print(json.dumps({"throughput": tp}, indent=1), flush=True)
        KILL_AT = len(prompts) // 2
        if a.skip_crash:
            for tp in tps:
                print(f"SUMMARY concurrency {tp['concurrency']}: ours {tp['ours_median']} req/s = "
                      f"{tp['ours_vs_bound']:.1%} of the bound; peer {tp['peer_vs_bound']:.1%}; "
                      f"load {os.getloadavg()[0]:.1f}")
            return
        kr = kill_restart(server, laws, a.docs, max(levels), work)
        print(json.dumps({"kill_restart": kr}, indent=1), flush=True)
        crash_ok = (kr["killed_with_sigkill"] and kr["resent_finished_items"] == 0 and kr["items_lost"] == 0
                    and kr["max_requests_per_item_after_restart"] <= 1)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        for tp in tps:
            print(f"SUMMARY concurrency {tp['concurrency']}: ours {tp['ours_median']} req/s = {tp['ours_vs_bound']:.1%} of "
                  f"the bound {tp['bound_rps']:.0f} (peer plain openai {tp['peer_median']} req/s = "
                  f"{tp['peer_vs_bound']:.1%}; ours/peer {tp['ours_vs_peer']:.2f}) -> "
                  f"{'PASS' if tp['ours_vs_bound'] >= 0.9 else 'BELOW 90%'}")
        print(f"SUMMARY kill at {kr['cached_before_kill']}/{kr['items']} stored: re-sent finished "
              f"{kr['resent_finished_items']}, lost {kr['items_lost']}, in flight at the kill and re-sent once "
              f"{kr['in_flight_at_kill']} -> {'PASS' if crash_ok else 'FAIL'}")


if __name__ == "__main__":
    main()
