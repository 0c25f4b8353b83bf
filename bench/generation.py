"""Generation throughput: our llama.cpp backend vs llama-cpp-python called directly, same run.

Same GGUF, same prompts, same sampling params and seeds; the two paths alternate prompt by prompt so
that load from other processes on the machine hits both alike. Prints generated tokens per second for
each and the ratio (target: ours >= 0.9x direct). Our backend pays one extra prompt evaluation per
sample (``llm.reset()`` for reproducible seeds); the direct path reuses the KV-cache prefix.

    python bench/generation.py [--model smollm2] [--prompts 8] [--max-tokens 128] [--temperature 0.8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.backends import open_backend, resolve_model  # noqa: E402
from pipeline.backends.llamacpp import default_threads  # noqa: E402
from pipeline.types import SamplingParams  # noqa: E402

PROMPTS = [
    "Write a Python function is_prime(n) that returns True if n is a prime number.",
    "Write a Python function that reverses the words of a sentence.",
    "Write a Python function fib(n) returning the n-th Fibonacci number iteratively.",
    "Write a Python function that counts the vowels in a string.",
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Write a Python function that returns the most common element of a list.",
    "Write a Python function that checks whether a string is a palindrome, ignoring case.",
    "Write a Python function that flattens a nested list of integers.",
    "Write a Python function that converts a Roman numeral to an integer.",
    "Write a Python function that returns the second largest number of a list.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--threads", type=int, help="llama.cpp threads for both paths (default: cores - 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from pipeline.backends.llamacpp import open_llama

    path = resolve_model(args.model)
    threads = args.threads or default_threads()
    ours = open_backend(args.model, backend="llamacpp", n_threads=threads, n_ctx=4096)
    direct = open_llama(model_path=str(path), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    params = SamplingParams(
        temperature=args.temperature, top_p=0.95, top_k=40, min_p=0.0, max_tokens=args.max_tokens, seed=1234
    )
    prompts = [[{"role": "user", "content": p}] for p in (PROMPTS * 4)[: args.prompts]]

    # Warm both (first call pays page-faults of the weights).
    ours.generate(prompts[:1], SamplingParams(max_tokens=4))
    direct.create_chat_completion(messages=prompts[0], max_tokens=4)

    totals = {"ours": [0, 0.0], "direct": [0, 0.0]}  # tokens, seconds

    def run_ours(messages: list[dict]) -> None:
        before = ours.usage.completion_tokens
        t0 = time.perf_counter()
        ours.generate([messages], params)
        totals["ours"][1] += time.perf_counter() - t0
        totals["ours"][0] += ours.usage.completion_tokens - before

    def run_direct(messages: list[dict]) -> None:
        t0 = time.perf_counter()
        response = direct.create_chat_completion(
            messages=messages,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            repeat_penalty=1.0,
            max_tokens=params.max_tokens,
            seed=params.seed,
        )
        totals["direct"][1] += time.perf_counter() - t0
        totals["direct"][0] += response["usage"]["completion_tokens"]

    # ABBA order: which path goes first alternates, so drifting load from other processes cancels out.
    for index, messages in enumerate(prompts):
        first, second = (run_ours, run_direct) if index % 2 == 0 else (run_direct, run_ours)
        first(messages)
        second(messages)
    (ours_tokens, ours_s), (direct_tokens, direct_s) = totals["ours"], totals["direct"]
    ours.close()
    direct.close()

    ours_rate, direct_rate = ours_tokens / ours_s, direct_tokens / direct_s
    summary = {
        "model": str(path),
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "threads": threads,
        "ours": {"tokens": ours_tokens, "seconds": round(ours_s, 2), "tokens_per_s": round(ours_rate, 1)},
        "direct": {"tokens": direct_tokens, "seconds": round(direct_s, 2), "tokens_per_s": round(direct_rate, 1)},
        "ratio": round(ours_rate / direct_rate, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"llama.cpp backend : {ours_tokens} tokens in {ours_s:.1f} s = {ours_rate:.1f} tok/s")
        print(f"llama-cpp direct  : {direct_tokens} tokens in {direct_s:.1f} s = {direct_rate:.1f} tok/s")
        print(f"ratio ours/direct : {summary['ratio']:.3f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
