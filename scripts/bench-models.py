#!/usr/bin/env python3
"""Energon against llama.cpp's llama-bench on the same models, same machine, same run.

For every model, thread count and depth, runs `llama-bench` and `energon bench` back to back
(interleaved, so drift in the machine's speed hits both), and prints a markdown table of
tokens/s and ratios (Energon / llama.cpp) for prefill (pp512) and decode (tg128).

    python3 scripts/bench-models.py [--repetitions 3] [--rounds 1] [--threads 1,2] [--depths 0,1024] [--models A.gguf,B.gguf]

With --rounds N each row alternates llama.cpp and Energon N times and keeps each engine's best
round: this VM's memory bandwidth switches between two modes (~53 and ~81 GB/s on 2 threads) over
minutes, and one back-to-back pair can straddle a switch; the best of several alternating rounds
compares both engines in the same (fast) mode.

Needs llama.cpp's tools (../shared/tools/llamacpp-anchor.sh builds them and the SmolLM2 formats)
and a release build of energon (swift build -c release --product energon).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def anchor(flag=None):
    script = os.path.join(ROOT, "..", "shared", "tools", "llamacpp-anchor.sh")
    args = [script] + ([flag] if flag else [])
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def llama(bin_dir, model, threads, depth, pp, tg, reps):
    out = subprocess.run([os.path.join(bin_dir, "llama-bench"), "-m", model, "-t", str(threads), "-p", str(pp),
                          "-n", str(tg), "-d", str(depth), "-r", str(reps), "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    result = {}
    for row in rows:
        key = "pp" if row["n_prompt"] > 0 else "tg"
        result[key] = row["avg_ts"]
    return result


def energon(model, threads, depth, pp, tg, reps):
    result = {}
    for key, (p, g) in (("pp", (pp, 0)), ("tg", (0, tg))):
        out = subprocess.run([os.path.join(ROOT, ".build", "release", "energon"), "bench", "--model", model,
                              "--threads", str(threads), "--prompt-tokens", str(p), "--gen-tokens", str(g),
                              "--depth", str(depth), "--repetitions", str(reps), "--json"],
                             check=True, capture_output=True, text=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        result[key] = data["prompt_tokens_per_second"] if key == "pp" else data["generation_tokens_per_second"]
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--depths", default="0,1024")
    parser.add_argument("--models", default="")
    parser.add_argument("--pp", type=int, default=512)
    parser.add_argument("--tg", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per row; each engine's best is kept")
    args = parser.parse_args()
    bin_dir = anchor()
    models_dir = anchor("--models")
    names = args.models.split(",") if args.models else [
        "SmolLM2-135M-Instruct.Q8_0.gguf", "SmolLM2-135M-Instruct.Q4_0.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct.F16.gguf", "SmolLM2-135M-Instruct.F32.gguf", "gemma-3-270m-q4_k_m.gguf"]
    print(f"| model | threads | depth | llama.cpp pp{args.pp} | Energon pp{args.pp} | ratio | "
          f"llama.cpp tg{args.tg} | Energon tg{args.tg} | ratio |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name in names:
        model = name if os.path.isabs(name) else os.path.join(models_dir, name)
        if not os.path.exists(model):
            model = os.path.join(ROOT, "models", name)
        for threads in [int(t) for t in args.threads.split(",")]:
            for depth in [int(d) for d in args.depths.split(",")]:
                ref, ours = {"pp": 0.0, "tg": 0.0}, {"pp": 0.0, "tg": 0.0}
                for _ in range(max(1, args.rounds)):
                    for best, result in ((ref, llama(bin_dir, model, threads, depth, args.pp, args.tg, args.repetitions)),
                                         (ours, energon(model, threads, depth, args.pp, args.tg, args.repetitions))):
                        for key in best:
                            best[key] = max(best[key], result[key])
                print(f"| {os.path.basename(model)} | {threads} | {depth} | {ref['pp']:.0f} | {ours['pp']:.0f} | "
                      f"**{ours['pp'] / ref['pp']:.2f}×** | {ref['tg']:.1f} | {ours['tg']:.1f} | "
                      f"**{ours['tg'] / ref['tg']:.2f}×** |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
