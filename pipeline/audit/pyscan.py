"""Python source, read with ``ast`` (never imported or run).

Reported: keyword arguments and dict-literal keys named like a sampling parameter (OpenAI, Ollama,
LangChain, vLLM ``SamplingParams``, transformers ``generate``/``GenerationConfig``, or anything else), argparse
and click option defaults, argv lists (``["llama-server", "--temp", "0.2"]``), function-parameter defaults,
and assignments to parameter-named variables that no reported call consumes. Values are resolved through
constants and simple variables; f-strings, attributes and calls stay "dynamic" with their source text;
``os.environ``/``getenv`` reads record the variable and its default. Calls that are clearly LLM requests but
set no temperature get an "implicit" finding with the runtime's default.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from pipeline.audit.collect import MODEL_KEYS, Collector, FileScan, Value, model_name, parse_text
from pipeline.audit.defaults import DEFAULTS
from pipeline.audit.findings import match_param
from pipeline.audit.shell import scan_argv

_RUNTIME_IMPORTS = {
    "openai": "openai",
    "ollama": "ollama",
    "langchain_ollama": "ollama",
    "vllm": "vllm",
    "llama_cpp": "llamacpp-python",
    "transformers": "transformers",
    "langchain_openai": "openai",
}
_OPTION_CALLS = frozenset({"add_argument", "option", "Option", "argument"})
# pydantic's Field(alias=...) is not a model; the YAML/INI/CLI spellings "alias"/"from" stay out here.
PY_MODEL_KEYS = MODEL_KEYS - {"alias", "from"}
_ENV_GETTERS = frozenset({"os.getenv", "getenv", "os.environ.get", "environ.get", "os.environ.setdefault"})


@dataclass(frozen=True)
class _Binding:
    line: int
    node: ast.AST | None  # the assigned expression; None for a parameter without default
    kind: str  # "assign" | "param"
    owner: str = ""  # the function a parameter belongs to


def _request_runtime(callee: str, imports: set[str]) -> str | None:
    """The runtime whose default applies when this call sets no temperature (None: not an LLM request)."""
    last = callee.rsplit(".", 1)[-1]
    if callee.endswith(("chat.completions.create", "completions.create", "responses.create")) or last == "ChatOpenAI":
        return "openai"
    if callee in ("ollama.chat", "ollama.generate") or last in ("ChatOllama", "OllamaLLM"):
        return "ollama"
    if last == "SamplingParams":
        return "vllm"
    if last in ("create_chat_completion", "create_completion"):
        return "llamacpp-python"
    if last == "GenerationConfig" or (last == "generate" and "transformers" in imports and "vllm" not in imports):
        return "transformers"
    return None


class _Scopes(ast.NodeVisitor):
    """Pass 1: bindings per scope (module, each function and class), and the file's models and imports."""

    def __init__(self) -> None:
        self.bindings: dict[ast.AST, dict[str, list[_Binding]]] = {}
        self.imports: set[str] = set()
        self.models: list[str] = []
        self.options: dict[str, tuple[int, str, ast.AST]] = {}  # argparse/click dest -> (line, flag, default)
        self._stack: list[ast.AST] = []

    def scope(self) -> dict[str, list[_Binding]]:
        return self.bindings.setdefault(self._stack[-1], {})

    def visit_Module(self, node: ast.Module) -> None:
        self._stack.append(node)
        self.generic_visit(node)
        self._stack.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.AST | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
        self._stack.append(node)
        owner = getattr(node, "name", "lambda")
        for arg, default in pairs:
            self.scope().setdefault(arg.arg, []).append(_Binding(arg.lineno, default, "param", owner))
        self.generic_visit(node)
        self._stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._stack.append(node)
        self.generic_visit(node)
        self._stack.pop()

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.scope().setdefault(target.id, []).append(_Binding(node.lineno, node.value, "assign"))
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and node.value is not None:
            self.scope().setdefault(node.target.id, []).append(_Binding(node.lineno, node.value, "assign"))
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.imports.update(alias.name.split(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            self.imports.add(node.module.split(".")[0])

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg in PY_MODEL_KEYS and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                self.models.append(model_name(kw.value.value))
        last = ast.unparse(node.func).rsplit(".", 1)[-1]
        first = node.args[0] if node.args else None  # from_pretrained("org/name"), vllm.LLM("org/name")
        if last in _OPTION_CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
            dest = next(
                (kw.value.value for kw in node.keywords if kw.arg == "dest" and isinstance(kw.value, ast.Constant)),
                first.value.lstrip("-").replace("-", "_"),
            )
            if first.value.startswith("--") and default is not None:
                self.options.setdefault(str(dest), (node.lineno, first.value, default))
        if last in ("from_pretrained", "LLM") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            self.models.append(model_name(first.value))
        self.generic_visit(node)


class _Finder(ast.NodeVisitor):
    """Pass 2: findings, with values resolved against pass 1's bindings."""

    def __init__(self, col: Collector, scopes: _Scopes, tree: ast.Module) -> None:
        self.col = col
        self.tree = tree
        self.scopes = scopes
        self.stack: list[ast.AST] = []
        self.consumed: set[tuple[int, str]] = set()  # (id(scope), name) read by a reported setting
        models = sorted(set(scopes.models))
        self.file_model = models[0] if len(models) == 1 else None

    # --------------------------------------------------------------------------------- traversal
    def visit(self, node: ast.AST) -> None:
        self.stack.append(node)
        super().visit(node)
        self.stack.pop()

    def _scope_chain(self) -> list[ast.AST]:
        chain = [
            n
            for n in self.stack
            if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef)
        ]
        # Class bodies are not visible from their methods (Python's own rule); keep only the innermost class.
        inner = chain[-1] if chain else None
        return [n for n in reversed(chain) if not isinstance(n, ast.ClassDef) or n is inner]

    def _contexts(self, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        names = []
        for node in reversed(self.stack):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.extend(ast.unparse(t) for t in targets)
        return (*extra, *names)

    # --------------------------------------------------------------------------------- values
    def resolve(self, node: ast.AST | None, depth: int = 0) -> Value:
        if node is None:
            return Value(None, note="no value")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or node.value is None:
                return Value(None if node.value is None else "bool")
            if isinstance(node.value, str):
                return parse_text(node.value)
            return Value(node.value) if isinstance(node.value, int | float) else Value(repr(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.resolve(node.operand, depth + 1)
            if inner.is_numeric:
                return Value(-inner.value if isinstance(node.op, ast.USub) else inner.value, note=inner.note)
            return Value(expr=ast.unparse(node))
        if isinstance(node, ast.Name) and depth < 6:
            return self._resolve_name(node, depth)
        if isinstance(node, ast.Call):
            callee = ast.unparse(node.func)
            if callee in ("float", "int", "str") and len(node.args) == 1:
                inner = self.resolve(node.args[0], depth + 1)
                if inner.expr is not None:  # keep the conversion in what the reader sees
                    return Value(None, ast.unparse(node), inner.env_var, inner.env_default, inner.note)
                if isinstance(inner.value, str) and callee != "str":
                    return Value(parse_text(inner.value).value, note=inner.note)
                return inner
            if callee.rsplit(".", 1)[-1] in ("field", "Field"):  # dataclass / pydantic field defaults
                default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
                if default is None and node.args and callee.endswith("Field"):
                    default = node.args[0]
                if default is not None:
                    inner = self.resolve(default, depth + 1)
                    return Value(
                        inner.value,
                        inner.expr,
                        inner.env_var,
                        inner.env_default,
                        "field default" + (f"; {inner.note}" if inner.note else ""),
                    )
            if callee in _ENV_GETTERS and node.args:
                return self._env(node, node.args[0], node.args[1] if len(node.args) > 1 else None, depth)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in self.scopes.options
            and node.value.id in ("args", "opts", "options", "cli", "ns", "parsed", "arguments")
        ):
            line, flag, default = self.scopes.options[node.attr]
            inner = self.resolve(default, depth + 1)
            if inner.is_numeric:  # what the script runs with unless the command line says otherwise
                return Value(inner.value, note=f"default of {flag} (line {line}), unless given on the command line")
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            return self._env(node, node.slice, None, depth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
            left, right = self.resolve(node.values[0], depth + 1), self.resolve(node.values[1], depth + 1)
            if left.env_var and left.env_default is None and right.is_numeric:
                return Value(expr=ast.unparse(node), env_var=left.env_var, env_default=str(right.value))
        return Value(expr=ast.unparse(node))

    def _env(self, node: ast.AST, name_node: ast.AST, default: ast.AST | None, depth: int) -> Value:
        name = self.resolve(name_node, depth + 1).value
        fallback = self.resolve(default, depth + 1) if default is not None else None
        fallback_text = None
        if fallback is not None and (fallback.value is not None or fallback.expr):
            fallback_text = str(fallback.value) if fallback.value is not None else fallback.expr
        return Value(expr=ast.unparse(node), env_var=name if isinstance(name, str) else None, env_default=fallback_text)

    def _resolve_name(self, node: ast.Name, depth: int) -> Value:
        for scope in self._scope_chain():
            bindings = self.scopes.bindings.get(scope, {}).get(node.id)
            if not bindings:
                continue
            self.consumed.add((id(scope), node.id))
            before = [b for b in bindings if b.line <= node.lineno] or bindings
            candidates = {ast.dump(b.node) if b.node is not None else "" for b in before}
            binding = before[-1]
            if len(candidates) > 1 and binding.kind == "assign" and scope is not self._scope_chain()[0]:
                return Value(expr=f"{node.id} (assigned {len(candidates)} different values)")
            inner = self.resolve(binding.node, depth + 1)
            if binding.kind == "param":
                note = f"default of parameter '{node.id}' of {binding.owner}() (line {binding.line})"
                if binding.node is None:
                    return Value(expr=f"{node.id} (parameter of {binding.owner}(), no default)")
                return Value(inner.value, inner.expr or None, inner.env_var, inner.env_default, note)
            note = f"via {node.id} (line {binding.line})" + (f"; {inner.note}" if inner.note else "")
            expr = f"{node.id} = {inner.expr}" if inner.expr else None
            return Value(inner.value, expr, inner.env_var, inner.env_default, note)
        return Value(expr=node.id)

    # --------------------------------------------------------------------------------- findings
    def _model_of(self, call: ast.Call | None) -> str | None:
        if call is not None:
            for kw in call.keywords:
                if kw.arg in PY_MODEL_KEYS:
                    value = self.resolve(kw.value)
                    if isinstance(value.value, str):
                        return model_name(value.value)
        for node in reversed(self.stack):  # an enclosing call's model= (a dict passed as options=...)
            if isinstance(node, ast.Call) and node is not call:
                for kw in node.keywords:
                    if kw.arg in PY_MODEL_KEYS:
                        value = self.resolve(kw.value)
                        if isinstance(value.value, str):
                            return model_name(value.value)
        return self.file_model

    def visit_Call(self, node: ast.Call) -> None:
        callee = ast.unparse(node.func)
        last = callee.rsplit(".", 1)[-1]
        group = ("call", node.lineno, node.col_offset)
        runtime = _request_runtime(callee, self.scopes.imports)
        if runtime:
            self.col.mark_llm_group(group)
        sets_temperature = any(kw.arg is None for kw in node.keywords)  # **kwargs: may set it, cannot tell
        if last in _OPTION_CALLS and node.args and isinstance(node.args[0], ast.Constant):
            flag = node.args[0].value
            default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
            if isinstance(flag, str) and flag.startswith("--") and default is not None:
                param, _ = match_param(flag[2:])
                if param:
                    self.col.add(
                        line=node.lineno,
                        key=flag,
                        value=self.resolve(default),
                        param=param,
                        contexts=self._contexts((flag,)),
                        model=self.file_model,
                        group=("cli", "options"),
                    )
        model = self._model_of(node)
        for kw in node.keywords:
            if kw.arg is None:
                continue
            param, _ = match_param(kw.arg, callee)
            if param is None:
                continue
            sets_temperature |= param == "temperature"
            self.col.add(
                line=kw.value.lineno,
                key=f"{callee}({kw.arg}=)",
                value=self.resolve(kw.value),
                param=param,
                contexts=self._contexts((kw.arg, callee)),
                model=model,
                group=group,
                llm_place=bool(runtime),
            )
        for kw in node.keywords:  # Ollama's options={...}, OpenAI's extra_body={...}, generate(generation_config=)
            if (isinstance(kw.value, ast.Dict) and self._dict_sets(kw.value, "temperature")) or kw.arg in (
                "generation_config",
                "options",
                "sampling_params",
            ):
                sets_temperature = True
        if runtime and not sets_temperature:
            self._implicit(node, runtime, callee, model)
        self.generic_visit(node)

    def _dict_sets(self, node: ast.Dict, param: str) -> bool:
        return any(
            isinstance(k, ast.Constant) and isinstance(k.value, str) and match_param(k.value)[0] == param
            for k in node.keys
        )

    def _implicit(self, node: ast.Call, runtime: str, callee: str, model: str | None) -> None:
        spec = DEFAULTS[runtime]
        value = spec.values["temperature"]
        note = f"{spec.label} default, nothing set here"
        if runtime == "transformers":
            do_sample = next((kw.value for kw in node.keywords if kw.arg == "do_sample"), None)
            sampled = isinstance(do_sample, ast.Constant) and do_sample.value is True
            value = value if sampled else 0
            note = (
                "transformers default temperature 1.0 with do_sample=True"
                if sampled
                else "greedy: transformers generate() without do_sample (unless the model's generation_config.json "
                "sets do_sample)"
            )
        self.col.add(
            line=node.lineno,
            key=f"{callee}()",
            value=Value(value, note=note),
            param="temperature",
            contexts=self._contexts((callee,)),
            model=model,
            group=("call", node.lineno, node.col_offset),
            implicit=True,
        )

    def visit_Dict(self, node: ast.Dict) -> None:
        group = ("dict", node.lineno, node.col_offset)
        parent_call = next((n for n in reversed(self.stack[:-1]) if isinstance(n, ast.Call)), None)
        callee = ast.unparse(parent_call.func) if parent_call is not None else ""
        model = None
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value in PY_MODEL_KEYS:
                resolved = self.resolve(value)
                if isinstance(resolved.value, str):
                    model = model_name(resolved.value)
        model = model or self._model_of(parent_call)
        if parent_call is not None and _request_runtime(callee, self.scopes.imports):
            self.col.mark_llm_group(group)
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            param, _ = match_param(key.value, callee)
            if param:
                self.col.add(
                    line=value.lineno,
                    key=f"{{{key.value!r}: ...}}",
                    value=self.resolve(value),
                    param=param,
                    contexts=self._contexts((key.value, callee)),
                    model=model,
                    group=group,
                )
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        """A composite string: ``default="temperature=0.6,top_p=0.95"``, ``'{"temperature": 0.6}'``."""
        parent = self.stack[-2] if len(self.stack) > 1 else None
        if not isinstance(node.value, str) or isinstance(parent, ast.Expr | ast.JoinedStr):
            return  # docstrings and bare strings are comments; f-string parts are not whole strings
        owner = self._holder(node, parent)
        if owner in ("help", "description", "epilog", "usage"):  # an option's help text is documentation
            return
        self.col.add_pairs(
            node.value,
            line=node.lineno,
            owner=owner,
            contexts=self._contexts((owner,)),
            model=self._model_of(None),
            fmt="python",
        )

    def _holder(self, node: ast.Constant, parent: ast.AST | None) -> str:
        """What a string is the value of: an option's flag, a keyword, a variable, a dict key, an argv flag."""
        if isinstance(parent, ast.keyword) and parent.arg:
            call = self.stack[-3]
            flag = call.args[0] if isinstance(call, ast.Call) and call.args else None
            if (
                parent.arg == "default"
                and isinstance(flag, ast.Constant)
                and isinstance(flag.value, str)
                and ast.unparse(call.func).rsplit(".", 1)[-1] in _OPTION_CALLS
            ):
                return flag.value
            return parent.arg
        if isinstance(parent, ast.Assign | ast.AnnAssign):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return ast.unparse(targets[0])
        if isinstance(parent, ast.Dict) and node in parent.values:
            key = parent.keys[parent.values.index(node)]
            return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else ""
        if isinstance(parent, ast.List | ast.Tuple) and node in parent.elts:
            index = parent.elts.index(node)
            before = parent.elts[index - 1] if index else None
            if isinstance(before, ast.Constant) and isinstance(before.value, str) and before.value.startswith("-"):
                return before.value
        return ""

    def _argv(self, node: ast.List | ast.Tuple) -> None:
        if len(node.elts) < 2 or not any(
            isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value.startswith("--") for e in node.elts
        ):
            return
        words = []
        for element in node.elts:
            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                words.append((element.value, element.lineno))
            else:
                resolved = self.resolve(element)
                text = (
                    str(resolved.value)
                    if resolved.is_numeric
                    else ("$" + (resolved.env_var or "{" + ast.unparse(element) + "}"))
                )
                words.append((text, element.lineno))
        scan_argv(
            self.col, words, contexts=self._contexts(), group=("argv", node.lineno, node.col_offset), fmt="python"
        )

    def visit_List(self, node: ast.List) -> None:
        self._argv(node)
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple) -> None:
        self._argv(node)
        self.generic_visit(node)

    def assignments(self, tree: ast.Module) -> None:
        """Parameter-named attributes (``self.temperature = t``), then variables, parameters and fields whose
        value no reported setting already carries (attributes first: resolving them consumes names)."""
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute) and match_param(target.attr)[0]:
                    self.stack = _path_to(tree, node)[:-1]  # resolve in the enclosing function
                    self.col.add(
                        line=node.value.lineno,
                        key=ast.unparse(target),
                        value=self.resolve(node.value),
                        contexts=self._contexts((ast.unparse(target),)),
                        model=self.file_model,
                        group=("attr", ast.unparse(target.value)),
                    )
        for scope, names in self.scopes.bindings.items():
            for name, bindings in names.items():
                if (id(scope), name) in self.consumed:
                    continue
                for binding in bindings:
                    if binding.kind == "param" and binding.node is None:
                        continue
                    self._assignment(scope, name, binding)

    def _assignment(self, scope: ast.AST, name: str, binding: _Binding) -> None:
        param, _ = match_param(name)
        if param is None:
            return
        self.stack = _path_to(self.tree, scope)
        owner = getattr(scope, "name", "")
        key = f"{owner}({name}=)" if binding.kind == "param" else (f"{owner}.{name}" if owner else name)
        self.col.add(
            line=binding.node.lineno if binding.node is not None else binding.line,
            key=key,
            value=self.resolve(binding.node),
            param=param,
            contexts=(name, owner),
            model=self.file_model,
            group=("scope", id(scope)),
        )


def _path_to(tree: ast.AST, target: ast.AST) -> list[ast.AST]:
    """The chain of nodes from the module to ``target`` (so names resolve in the right scope)."""

    def search(node: ast.AST, path: list[ast.AST]) -> list[ast.AST] | None:
        if node is target:
            return [*path, node]
        for child in ast.iter_child_nodes(node):
            # Scopes sit in statements (and lambdas in expressions, which are rare enough to search too).
            if isinstance(child, ast.stmt | ast.Lambda | ast.arguments) or not isinstance(child, ast.expr):
                found = search(child, [*path, node])
                if found:
                    return found
        return None

    return search(tree, []) or [tree]


def scan_python(path: str, text: str) -> FileScan:
    col = Collector(path, "python", text)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return col.invalid("invalid python")
    scopes = _Scopes()
    try:
        scopes.visit(tree)
        finder = _Finder(col, scopes, tree)
        finder.visit(tree)
        finder.assignments(tree)
    except RecursionError:
        return col.invalid("python too deeply nested")
    col.scan.runtimes.update(rt for mod, rt in _RUNTIME_IMPORTS.items() if mod in scopes.imports)
    return col.done()
