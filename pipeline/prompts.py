"""Prompting and code extraction: Problem -> chat messages, model text -> the program we execute.

Messages are plain ``[{"role", "content"}]`` lists; each backend applies the model's own chat
template to them. No system message is added for our styles, so the model's template supplies its
default (SmolLM2's names the assistant); the LCB style follows the paper's evaluation code.

Styles (``Problem.style``):
- ``complete``: the prompt is code to continue (HumanEval). We ask for the whole function in one
  fenced block and show the prompt code.
- ``instruct``: the prompt is a task statement; we add the signature (``metadata["signature"]``) or
  the entry point's name when the statement does not already say it, and the starter code.
- ``lcb``: the templates of apple/ml-ssd ``evaluation/benchmark.py`` (commit 27849bb), which the SSD
  paper's LiveCodeBench numbers come from: one user message, the stdin variant or the starter-code
  (functional) variant. ``build_messages(problem, lcb_template="lcb")`` instead uses LiveCodeBench's
  own ``lcb_runner/prompts/code_generation.py`` (``SYSTEM_MESSAGE_GENERIC`` +
  ``get_generic_question_template_answer``, the OpenAIChat style).

Extraction (``extract_program``):
1. Fenced blocks are found line by line: a line starting (after indentation) with three backticks
   opens a block, the next such line closes it; the info string after the opening backticks is the
   language tag. Blocks are dedented.
2. The last block is used, as LiveCodeBench and ml-ssd do. For our own styles (not ``lcb``), blocks
   tagged with another language (``bash``, ``text``, ``output`` …) are skipped when a Python or
   untagged block exists, and if the last block does not define the entry point but an earlier one
   does (a trailing "example output" block), the last block that defines it is used; if none defines
   it, the last block that defines any function (the model misnamed it; the verdict will say so).
3. Fallbacks: an opening fence that is never closed (the model hit the token limit or stopped right
   after the code) -> everything after it; no fence at all -> the whole text if it parses as Python
   and is more than bare expressions (a lone "Sure" or "42" is not a program; for ``complete``: also when the
   prompt + the text parses, i.e. a bare continuation); else None (verdict ``no_code``).
4. ``complete`` style assembles a runnable program: if the code defines the entry point it runs after
   the prompt (so the prompt's imports and helper functions stay defined and the model's definition
   wins); otherwise the code is the body and is appended to the prompt, re-indented when the model
   wrote it flush left.
5. LCB functional problems are LeetCode ``class Solution`` methods; the program is kept as the model
   wrote it: the executor resolves ``fn_name`` on ``Solution()`` when no module-level function has
   that name, as LiveCodeBench does.
"""

from __future__ import annotations

import ast
import re
import textwrap

from pipeline.types import Problem

FENCE = "```"
PYTHON_TAGS = {"", "python", "python3", "py", "py3", "pycon", "ipython"}

# apple/ml-ssd evaluation/benchmark.py (27849bb): LCB_PROMPT_WITHOUT_STARTER_CODE / _WITH_STARTER_CODE.
SSD_LCB_STDIN = """You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests. You will NOT return anything except for the program.

Question: {problem_description}

Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.
```python
  # YOUR CODE HERE
```"""

SSD_LCB_STARTER = """You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests. You will NOT return anything except for the program.

Question: {problem_description}

You will use the following starter code to write the solution to the problem and enclose your code within delimiters as follows.
```python
{entry_point}
```"""

# LiveCodeBench lcb_runner/prompts/code_generation.py: PromptConstants and the generic template.
LCB_SYSTEM_MESSAGE = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will "
    "generate a correct Python program that matches the specification and passes all tests. You will NOT "
    "return anything except for the program."
)
LCB_FORMAT_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters."
)
LCB_FORMAT_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on "
    "the sample inputs). Enclose your code within delimiters as follows."
)

COMPLETE_TEMPLATE = (
    "Complete the following Python function. Reply with the complete function, including the imports it "
    "needs, in a single ```python code block.\n\n```python\n{prompt}\n```"
)
ANSWER_FORMAT = "Reply with the complete function in a single ```python code block."


def _lcb_generic(problem: Problem) -> str:
    text = f"### Question:\n{problem.prompt}\n\n"
    if problem.starter_code:
        text += f"### Format: {LCB_FORMAT_WITH_STARTER}\n```python\n{problem.starter_code}\n```\n\n"
    else:
        text += f"### Format: {LCB_FORMAT_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


def _instruct(problem: Problem) -> str:
    parts = [problem.prompt.strip()]
    signature = problem.metadata.get("signature")
    if signature:
        parts.append(f"Write a Python function `{signature}` that solves this.")
    elif problem.entry_point and not re.search(rf"\b{re.escape(problem.entry_point)}\b", problem.prompt):
        parts.append(f"Write it as a Python function named `{problem.entry_point}`.")
    if problem.starter_code:
        parts.append(f"Start from this code:\n```python\n{problem.starter_code.rstrip()}\n```")
    parts.append(ANSWER_FORMAT)
    return "\n\n".join(parts)


def build_messages(problem: Problem, lcb_template: str = "ssd") -> list[dict]:
    """Chat messages for one problem (see the module docstring for the styles and their sources)."""
    if problem.style == "complete":
        return [{"role": "user", "content": COMPLETE_TEMPLATE.format(prompt=problem.prompt.rstrip())}]
    if problem.style == "lcb":
        if lcb_template == "lcb":
            return [
                {"role": "system", "content": LCB_SYSTEM_MESSAGE},
                {"role": "user", "content": _lcb_generic(problem)},
            ]
        if lcb_template != "ssd":
            raise ValueError(f"lcb_template must be 'ssd' or 'lcb', got {lcb_template!r}")
        if problem.starter_code:
            content = SSD_LCB_STARTER.format(problem_description=problem.prompt, entry_point=problem.starter_code)
        else:
            content = SSD_LCB_STDIN.format(problem_description=problem.prompt)
        return [{"role": "user", "content": content}]
    return [{"role": "user", "content": _instruct(problem)}]


# ---------------------------------------------------------------------------------------- extraction


def fenced_blocks(text: str) -> tuple[list[tuple[str, str]], str | None]:
    """``([(tag, code), ...], unclosed_code)``: closed blocks in order, and the tail of an unclosed one.

    Deliberately not CommonMark (``core.markdown`` reads comments and READMEs that way): model output is
    read for the code its author meant, so any indentation opens a block, the next ``` line closes it
    whatever its length or info string, a fence glued to the last code line closes too, and an unclosed
    block still yields its tail. A strict reader would lose programs that a person sees at once.
    """
    blocks: list[tuple[str, str]] = []
    tag: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if tag is None:
            if stripped.startswith(FENCE):
                info = stripped[len(FENCE) :].strip("`").split()
                tag = info[0].lower() if info else ""
                body = []
        elif stripped.startswith(FENCE):
            blocks.append((tag, textwrap.dedent("\n".join(body))))
            tag = None
        elif stripped.endswith(FENCE):
            # "    return x```": small models glue the closing fence to the last line.
            body.append(line.rstrip()[: -len(FENCE)])
            blocks.append((tag, textwrap.dedent("\n".join(body))))
            tag = None
        else:
            body.append(line)
    unclosed = textwrap.dedent("\n".join(body)) if tag is not None else None
    return blocks, unclosed


def parses(code: str) -> bool:
    """Whether ``code`` compiles (not runs). ``compile``, not ``ast.parse``: only the compiler rejects
    a ``return`` outside a function, which is how a flush-left body shows itself."""
    try:
        compile(code, "<model output>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):  # ValueError: source with NUL bytes
        return False
    return True


def defines(code: str, name: str | None) -> bool:
    """Whether ``code`` defines ``name`` at top level (function, class or assignment)."""
    if not name:
        return False
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return True
    return False


def _choose_block(problem: Problem, blocks: list[tuple[str, str]]) -> str:
    if problem.style == "lcb":
        return blocks[-1][1]  # LCB/ml-ssd comparability: the last block, whatever it holds
    candidates = [code for tag, code in blocks if tag in PYTHON_TAGS] or [code for _, code in blocks]
    if problem.entry_point and not defines(candidates[-1], problem.entry_point):
        defining = [code for code in candidates if defines(code, problem.entry_point)]
        if defining:
            return defining[-1]
        # A misnamed function followed by a usage block: keep the code, so the verdict says what is wrong.
        with_functions = [code for code in candidates if _defines_any_function(code)]
        if with_functions:
            return with_functions[-1]
    return candidates[-1]


def _defines_any_function(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body)


def _raw_code(problem: Problem, text: str) -> str | None:
    blocks, unclosed = fenced_blocks(text)
    if blocks:
        return _choose_block(problem, blocks)
    if unclosed is not None and unclosed.strip():
        return unclosed
    continuation = text.lstrip("\n")
    if problem.style == "complete" and continuation[:1] in (" ", "\t") and parses(problem.prompt + text):
        return text  # a bare (indented) continuation of the prompt, as a base model writes it
    if looks_like_code(text):
        return text
    return None


def looks_like_code(text: str) -> bool:
    """Parses as Python and is more than bare expressions: "Sure" or "42" parse, but are not programs."""
    if not parses(text):
        return False
    return any(not isinstance(node, ast.Expr) for node in ast.parse(text).body)


def _imports_of(code: str) -> str:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return ""
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return "\n".join(ast.get_source_segment(code, node) or "" for node in imports)


def _complete_program(problem: Problem, code: str) -> str:
    prompt = problem.prompt
    if defines(code, problem.entry_point):
        if parses(prompt):
            return f"{prompt.rstrip()}\n\n{code.strip()}\n"
        imports = _imports_of(prompt)
        return f"{imports}\n\n{code.strip()}\n" if imports else code
    # The body (or the rest of it). HumanEval prompts end inside the function, after the docstring.
    if not prompt.endswith("\n"):
        prompt += "\n"
    body = code.strip("\n")
    candidate = prompt + body + "\n"
    reindented = prompt + textwrap.indent(textwrap.dedent(body), "    ") + "\n"
    # Flush-left code after a prompt that ends inside the function is meant as its body (fenced
    # blocks are dedented too), even when it would also compile at module level (``print(x)``).
    if body[:1] not in (" ", "\t") and parses(reindented):
        return reindented
    if parses(candidate):
        return candidate
    return reindented if parses(reindented) else candidate  # else: the executor reports the syntax error


def extract_program(problem: Problem, text: str) -> str | None:
    """The program to execute for one model output, or None when it holds no code."""
    code = _raw_code(problem, text)
    if code is None or not code.strip():
        return None
    if problem.style == "complete":
        return _complete_program(problem, code)
    return code if code.endswith("\n") else code + "\n"
