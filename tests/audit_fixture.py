"""The audit's fixture repo (tests/fixtures/audit_repo) and every finding it must give, for the local walk and
the walk over the Gitea stand-in alike."""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "audit_repo"

# (path, line, key, param, value as shown, role, model, implicit = a runtime default where nothing is set)
EXPECTED = {
    ('.env', 3, 'EVAL_TEMPERATURE', 'temperature', '0.7', 'eval', None, False),
    ('.env', 4, 'TRAIN_TEMPERATURE', 'temperature', '1.6', 'train', None, False),
    ('.env', 5, 'OLLAMA_TOP_K', 'top_k', '40', None, None, False),
    ('.gitea/workflows/bench.yml', 4, 'env.BENCH_TEMPERATURE', 'temperature', '0.8', 'eval', None, False),
    ('.gitea/workflows/bench.yml', 11, '--temperature', 'temperature', '$BENCH_TEMPERATURE', 'eval', None, False),
    ('Dockerfile', 2, 'EVAL_TEMPERATURE', 'temperature', '0.7', 'eval', None, False),
    ('Dockerfile', 2, 'OLLAMA_NUM_CTX', 'num_ctx', '4096', 'eval', None, False),
    ('Dockerfile', 4, '--temp', 'temperature', '0.2', 'eval', None, False),
    ('Makefile', 2, '--seed', 'seed', '0', 'train', None, False),
    ('Makefile', 2, '--temperature', 'temperature', '1.6', 'train', None, False),
    ('Makefile', 5, '--temperature', 'temperature', '0.6', 'eval', None, False),
    ('Makefile', 5, '--top-p', 'top_p', '0.95', 'eval', None, False),
    ('Modelfile', 3, 'PARAMETER temperature', 'temperature', '0.2', 'eval', 'qwen2.5-coder:7b', False),
    ('Modelfile', 4, 'PARAMETER num_ctx', 'num_ctx', '8192', 'eval', 'qwen2.5-coder:7b', False),
    ('Procfile', 2, '--temp', 'temperature', '0.7', 'eval', 'smollm2.gguf', False),
    ('Procfile', 2, '--top-k', 'top_k', '40', 'eval', 'smollm2.gguf', False),
    ('app/agent.py', 16, 'client.chat.completions.create(temperature=)', 'temperature', '0.2', 'eval', 'smollm2', False),
    ('app/agent.py', 17, 'client.chat.completions.create(top_p=)', 'top_p', "float(os.getenv('AGENT_TOP_P', '0.95'))", 'eval', 'smollm2', False),
    ('app/agent.py', 18, 'client.chat.completions.create(seed=)', 'seed', '0', 'eval', 'smollm2', False),
    ('app/agent.py', 24, 'client.chat.completions.create()', 'temperature', '1.0', 'eval', 'smollm2', True),
    ('app/agent.py', 29, 'client.chat.completions.create(temperature=)', 'temperature', "float(f'0.{level}')", 'eval', 'smollm2', False),
    ('configs/agent.toml', 6, 'agent.sampling.temperature', 'temperature', '0.0', 'eval', 'qwen2.5-coder:7b', False),
    ('configs/agent.toml', 7, 'agent.sampling.top_p', 'top_p', '1.0', 'eval', 'qwen2.5-coder:7b', False),
    ('configs/eval.json', 6, 'runs.[0].sampling.max_tokens', 'max_tokens', '512', 'eval', 'smollm2', False),
    ('configs/eval.json', 6, 'runs.[0].sampling.temperature', 'temperature', '0.2', 'eval', 'smollm2', False),
    ('configs/eval.json', 6, 'runs.[0].sampling.top_p', 'top_p', '0.9', 'eval', 'smollm2', False),
    ('configs/eval.json', 11, 'runs.[1].sampling.temperature', 'temperature', '0.7', 'eval', 'smollm2', False),
    ('configs/eval.json', 12, 'runs.[1].sampling.seed', 'seed', '1', 'eval', 'smollm2', False),
    ('configs/sampling.yaml', 3, 'defaults.top_p', 'top_p', '0.95', None, None, False),
    ('configs/sampling.yaml', 3, 'evaluation.top_p', 'top_p', '0.95', 'eval', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 3, 'synthesis.top_p', 'top_p', '0.95', 'train', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 4, 'defaults.top_k', 'top_k', '20', None, None, False),
    ('configs/sampling.yaml', 4, 'evaluation.top_k', 'top_k', '20', 'eval', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 4, 'synthesis.top_k', 'top_k', '20', 'train', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 5, 'defaults.seed', 'seed', '7', None, None, False),
    ('configs/sampling.yaml', 5, 'evaluation.seed', 'seed', '7', 'eval', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 5, 'synthesis.seed', 'seed', '7', 'train', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 10, 'synthesis.temperature', 'temperature', '1.6', 'train', 'qwen3-4b-instruct', False),
    ('configs/sampling.yaml', 15, 'evaluation.temperature', 'temperature', '1.6', 'eval', 'qwen3-4b-instruct', False),
    ('deploy/docker-compose.yml', 4, '--ctx-size', 'num_ctx', '2048', 'eval', 'smollm2.gguf', False),
    ('deploy/docker-compose.yml', 4, '--temp', 'temperature', '0.4', 'eval', 'smollm2.gguf', False),
    ('deploy/docker-compose.yml', 11, 'services.agent.environment.AGENT_TEMPERATURE', 'temperature', '${AGENT_TEMPERATURE:-0.3}', 'eval', None, False),
    ('deploy/docker-compose.yml', 13, '--temperature', 'temperature', '${AGENT_TEMPERATURE}', 'eval', None, False),
    ('deploy/llm.ini', 4, 'server.temperature', 'temperature', '0.3', 'eval', 'smollm2', False),
    ('deploy/llm.ini', 5, 'server.repeat_penalty', 'repeat_penalty', '1.1', 'eval', 'smollm2', False),
    ('deploy/llm.service', 6, '(no --temp)', 'temperature', '0.8', 'eval', 'qwen2.5-coder:7b', True),
    ('models/Modelfile.eval', 1, '(no PARAMETER temperature)', 'temperature', '0.8', 'eval', 'smollm2.gguf', True),
    ('models/Modelfile.eval', 2, 'PARAMETER seed', 'seed', '42', 'eval', 'smollm2.gguf', False),
    ('models/coder.Modelfile', 2, 'PARAMETER temperature', 'temperature', '0.6', 'eval', 'qwen2.5-coder:7b', False),
    ('models/coder.Modelfile', 3, 'PARAMETER top_k', 'top_k', '20', 'eval', 'qwen2.5-coder:7b', False),
    ('scripts/run_eval.py', 6, '--temperature', 'temperature', '0.6', 'eval', 'HuggingFaceTB/SmolLM2-135M-Instruct', False),
    ('scripts/run_eval.py', 7, '--top-p', 'top_p', '0.95', 'eval', 'HuggingFaceTB/SmolLM2-135M-Instruct', False),
    ('scripts/run_eval.py', 12, 'model.generate(max_new_tokens=)', 'max_tokens', '256', 'eval', 'HuggingFaceTB/SmolLM2-135M-Instruct', False),
    ('scripts/run_eval.py', 12, 'model.generate(temperature=)', 'temperature', '0.6', 'eval', 'HuggingFaceTB/SmolLM2-135M-Instruct', False),
    ('scripts/run_eval.py', 13, 'model.generate()', 'temperature', '0', 'eval', 'HuggingFaceTB/SmolLM2-135M-Instruct', True),
    ('scripts/run_eval.py', 13, 'model.generate(max_new_tokens=)', 'max_tokens', '64', 'eval', 'HuggingFaceTB/SmolLM2-135M-Instruct', False),
    ('scripts/serve.sh', 6, '--n_ctx', 'num_ctx', '2048', 'eval', 'smollm2', False),
    ('scripts/serve.sh', 7, '--temperature', 'temperature', '${SERVE_TEMPERATURE:-0.7}', 'eval', 'smollm2', False),
    ('scripts/synth.py', 5, "{'temperature': ...}", 'temperature', '1.6', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
    ('scripts/synth.py', 5, "{'top_k': ...}", 'top_k', '20', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
    ('scripts/synth.py', 7, 'SamplingParams(max_tokens=)', 'max_tokens', '4096', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
    ('scripts/synth.py', 7, 'SamplingParams(temperature=)', 'temperature', '1.6', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
    ('scripts/synth.py', 7, 'SamplingParams(top_k=)', 'top_k', '20', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
    ('scripts/synth.py', 7, 'SamplingParams(top_p=)', 'top_p', '0.8', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
    ('scripts/synth.py', 8, 'SamplingParams()', 'temperature', '1.0', 'train', 'Qwen/Qwen3-4B-Instruct-2507', True),
    ('scripts/synth.py', 8, 'SamplingParams(max_tokens=)', 'max_tokens', '256', 'train', 'Qwen/Qwen3-4B-Instruct-2507', False),
}
# Settings packed into one string (argparse default, JSON text, a flag's value) and a README's run instructions.
EXPECTED_COMPOSITE_AND_DOCS = {
    ('README.md', 7, '--temperature', 'temperature', '0.9', 'eval', None, False),
    ('README.md', 8, '--sampling_params[temperature]', 'temperature', '0.9', 'eval', None, False),
    ('README.md', 8, '--sampling_params[top_k]', 'top_k', '20', 'eval', None, False),
    ('README.md', 8, '--sampling_params[top_p]', 'top_p', '0.8', 'eval', None, False),
    ('README.md', 11, '--temperature', 'temperature', '1.6', 'train', None, False),
    ('README.md', 15, '--seed', 'seed', '3', 'eval', None, False),
    ('README.md', 15, '--temperature', 'temperature', '0.0', 'eval', None, False),
    ('scripts/bench_cli.py', 8, '--sampling_params[min_p]', 'min_p', '0.0', 'eval', None, False),
    ('scripts/bench_cli.py', 8, '--sampling_params[temperature]', 'temperature', '0.5', 'eval', None, False),
    ('scripts/bench_cli.py', 8, '--sampling_params[top_k]', 'top_k', '20', 'eval', None, False),
    ('scripts/bench_cli.py', 8, '--sampling_params[top_p]', 'top_p', '0.9', 'eval', None, False),
    ('scripts/bench_cli.py', 12, 'OVERRIDES[max_tokens]', 'max_tokens', '1024', 'eval', None, False),
    ('scripts/bench_cli.py', 12, 'OVERRIDES[temperature]', 'temperature', '0.5', 'eval', None, False),
}
EXPECTED |= EXPECTED_COMPOSITE_AND_DOCS


def rows(result) -> set[tuple]:
    return {(f.path, f.line, f.key, f.param, f.display, f.role, f.model, f.implicit) for f in result.findings}
