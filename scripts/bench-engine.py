#!/usr/bin/env python3
"""The engine's serving throughput against llama.cpp's llama-batched-bench, same machine, same run.

For every concurrency N (default 1, 4, 8, 16): N sequences, each a 64-token prompt and 128
generated tokens. llama-batched-bench (-npp 64 -ntg 128 -npl N) reports S, total tokens
((prompt + generated) × N) per second of its whole run; `energon bench-engine --scenario
throughput` submits N requests at once to the continuous-batching engine and reports the same
quantity. The two run back to back per concurrency (interleaved), so drift hits both.

Then Energon alone: pp 2 (1 thread per stage) with the non-blocking pipeline, with one batch in
flight, and pp 1 with 1 thread; ragged against padded prefill; the prefix cache's TTFT.

    python3 scripts/bench-engine.py [--model M.gguf] [--threads 2] [--concurrency 1,4,8,16] [--skip-llama]

Needs llama.cpp's tools (../shared/tools/llamacpp-anchor.sh) and a release build of energon.
"""
import argparse
import json
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENERGON = os.path.join(ROOT, ".build", "release", "energon")


def anchor_bin():
    script = os.path.join(ROOT, "..", "shared", "tools", "llamacpp-anchor.sh")
    return subprocess.run([script], check=True, capture_output=True, text=True).stdout.strip()


def llama_batched(bin_dir, model, threads, npl, npp, ntg):
    out = subprocess.run([os.path.join(bin_dir, "llama-batched-bench"), "-m", model, "-t", str(threads), "-tb", str(threads),
                          "-c", str(max(4096, npl * (npp + ntg) + 64)), "-b", "2048", "-ub", "512",
                          "-npp", str(npp), "-ntg", str(ntg), "-npl", str(npl)],
                         check=True, capture_output=True, text=True)
    # Markdown table row: |  PP |  TG |  B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
    for line in (out.stdout + out.stderr).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[0] == str(npp) and cells[2] == str(npl):
            return float(cells[9]), float(cells[7])
    raise RuntimeError("no result row in llama-batched-bench output:\n" + out.stdout + out.stderr)


def energon(args):
    out = subprocess.run([ENERGON, "bench-engine", "--json"] + args, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.path.expanduser("~/.cache/energon-anchor/models/SmolLM2-135M-Instruct.Q8_0.gguf"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--skip-llama", action="store_true", help="only Energon's pipeline, ragged and prefix figures")
    a = parser.parse_args()
    bin_dir = anchor_bin()
    name = os.path.basename(a.model)
    load = open("/proc/loadavg").read().split()[0]
    print(f"model {name}, {a.threads} threads, load average before: {load}\n")
    print("| concurrency | llama.cpp S (tok/s) | Energon (tok/s) | ratio | llama.cpp S_TG | Energon generated tok/s |")
    print("|--:|--:|--:|--:|--:|--:|")
    for n in [] if a.skip_llama else [int(x) for x in a.concurrency.split(",")]:
        total, tg = llama_batched(bin_dir, a.model, a.threads, n, a.prompt_tokens, a.gen_tokens)
        row = energon(["--model", a.model, "--threads", str(a.threads), "--concurrency", str(n),
                       "--prompt-tokens", str(a.prompt_tokens), "--gen-tokens", str(a.gen_tokens)])[0]
        print(f"| {n} | {total:.1f} | {row['total_tokens_per_second']:.1f} | **{row['total_tokens_per_second'] / total:.2f}×** "
              f"| {tg:.1f} | {row['generation_tokens_per_second']:.1f} |", flush=True)

    print("\nPipeline (Energon, total tokens/s):\n")
    print("| concurrency | pp 1, 1 thread | pp 2, one batch in flight | pp 2, non-blocking | non-blocking / pp 1 "
          "| stages computing (one in flight → non-blocking) | pp 1, 2 threads (same cores, one pool) |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    common = ["--model", a.model, "--concurrency", a.concurrency, "--prompt-tokens", str(a.prompt_tokens),
              "--gen-tokens", str(a.gen_tokens)]
    serial = {r["concurrency"]: r for r in energon(common + ["--threads", "1"])}
    blocking = {r["concurrency"]: r for r in energon(common + ["--threads", "1", "--pp", "2", "--batches-in-flight", "1"])}
    flowing = {r["concurrency"]: r for r in energon(common + ["--threads", "1", "--pp", "2"])}
    pooled = {r["concurrency"]: r for r in energon(common + ["--threads", "2"])}

    def busy(row):
        return "/".join(f"{100 * f:.0f}%" for f in row.get("stage_compute_fraction", []))

    for n in serial:
        rate = {k: table[n]["total_tokens_per_second"] for k, table in
                (("serial", serial), ("blocking", blocking), ("flowing", flowing), ("pooled", pooled))}
        print(f"| {n} | {rate['serial']:.1f} | {rate['blocking']:.1f} | {rate['flowing']:.1f} "
              f"| **{rate['flowing'] / rate['serial']:.2f}×** | {busy(blocking[n])} → {busy(flowing[n])} "
              f"| {rate['pooled']:.1f} ({rate['pooled'] / rate['serial']:.2f}×) |")

    ragged = energon(["--model", a.model, "--threads", str(a.threads), "--scenario", "ragged", "--repetitions", "2"])[0]
    print(f"\nRagged vs padded prefill of 8 prompts (16..512 tokens, {ragged['real_tokens']} real tokens): ragged "
          f"{ragged['ragged_seconds']:.3f} s, padded to {ragged['padded_tokens']} tokens {ragged['padded_seconds']:.3f} s "
          f"(time {ragged['padded_seconds'] / ragged['ragged_seconds']:.2f}×, tokens "
          f"{ragged['padded_tokens'] / ragged['real_tokens']:.2f}×)")
    prefix = energon(["--model", a.model, "--threads", str(a.threads), "--scenario", "prefix", "--prompt-tokens", "1024",
                      "--repetitions", "3"])[0]
    print(f"Prefix cache, 1024-token system prompt + 8 new tokens: TTFT cold {prefix['cold_ttft_seconds'] * 1000:.1f} ms, "
          f"warm {prefix['warm_ttft_seconds'] * 1000:.1f} ms ({prefix['cold_ttft_seconds'] / prefix['warm_ttft_seconds']:.1f}×)")
    print(f"\nload average after: {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
