"""``ssd gitea …``: set a repository up for the bot and check the token.

* ``ssd gitea install-webhook --repo owner/name --url URL`` creates the repository hook through the API:
  type ``gitea``, JSON, signed with the service's webhook secret, events ``pull_request_only``,
  ``issue_comment`` and ``pull_request_comment``, and ``active: true`` (the API's default is false, which
  delivers nothing). An existing hook for the URL is reported; ``--update`` rewrites its events and
  activates it, ``--replace`` deletes and recreates it (the only way to change its secret).
* ``ssd gitea check [--repo owner/name]``: who the token is, the server version, and whether the token may
  read other users' permissions (site admin, or admin of the repo), which command authorization needs.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from urllib.parse import urlsplit

from bot.gitea import (
    ADMIN_TOKEN_HINT,
    HOOK_EVENTS,
    GiteaClient,
    GiteaError,
    GiteaForbidden,
    GiteaNotFound,
    GiteaUnauthorized,
)
from core.config import ConfigError, Settings

# What Gitea lists back for HOOK_EVENTS: "pull_request_only" is stored as plain "pull_request".
STORED_EVENTS = {"pull_request", "issue_comment", "pull_request_comment"}


def _client(settings: Settings) -> GiteaClient:
    if settings.dry_run:
        raise ConfigError("SSD_GITEA_URL is not set: this command talks to Gitea (and SSD_GITEA_TOKEN is needed)")
    assert settings.gitea_url and settings.gitea_token
    return GiteaClient(
        settings.gitea_url, settings.gitea_token, timeout=settings.gitea_timeout, retries=min(settings.gitea_retries, 2)
    )


def _split_repo(value: str) -> tuple[str, str]:
    owner, sep, name = value.strip().strip("/").partition("/")
    if not sep or not owner or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"expected owner/name, got {value!r}")
    return owner, name


def _explain(exc: GiteaError, what: str, repo: str) -> str:
    if isinstance(exc, GiteaUnauthorized):
        return f"{what}: Gitea rejected SSD_GITEA_TOKEN (401); create a new token and set it"
    if isinstance(exc, GiteaForbidden):
        return f"{what}: the token may not do this on {repo} (403); it needs admin rights on the repository"
    if isinstance(exc, GiteaNotFound):
        return f"{what}: {repo} not found, or not visible to the token's user (404)"
    if exc.status == 0:
        return f"{what}: Gitea is unreachable: {exc.message}"
    return f"{what}: {exc}"


def _hook_is_right(hook: dict) -> bool:
    events = set(hook.get("events") or [])
    events = {"pull_request" if e == "pull_request_only" else e for e in events}
    content_type = (hook.get("config") or {}).get("content_type")
    return bool(hook.get("active")) and events >= STORED_EVENTS and content_type == "json"


def _delivery_warning(url: str) -> str | None:
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = host == "localhost" or host.endswith(".local") or "." not in host
    else:
        local = address.is_loopback or address.is_private or address.is_link_local
    if local:
        return (
            f"note: {host} is a loopback/private address; Gitea only delivers there when its "
            "[webhook] ALLOWED_HOST_LIST includes loopback, private or that host (default: external)"
        )
    return None


def install_webhook(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    owner, name = args.repo
    repo = f"{owner}/{name}"
    if urlsplit(args.url).scheme not in ("http", "https") or not urlsplit(args.url).hostname:
        print(f"ssd gitea install-webhook: --url must be an http(s) URL, got {args.url!r}", file=sys.stderr)
        return 2
    gitea = _client(settings)
    try:
        existing = [h for h in gitea.list_hooks(owner, name) if (h.get("config") or {}).get("url") == args.url]
        if existing and not (args.update or args.replace):
            hook = existing[0]
            state = "active" if hook.get("active") else "INACTIVE"
            print(
                f"{repo}: a hook for {args.url} already exists (id {hook['id']}, {state}, events "
                f"{', '.join(sorted(hook.get('events') or []))})."
            )
            if _hook_is_right(hook):
                print(
                    "It is active with the right events; nothing to do. (--replace recreates it, e.g. to "
                    "change its secret.)"
                )
                return 0
            print("Its settings differ from what the bot needs: run again with --update to fix them.")
            return 1
        if existing and args.replace:
            for hook in existing:
                gitea.delete_hook(owner, name, hook["id"])
                print(f"{repo}: deleted hook {hook['id']}")
            existing = []
        if existing:
            hook = gitea.update_hook(owner, name, existing[0]["id"], args.url, HOOK_EVENTS)
            print(f"{repo}: updated hook {hook['id']} -> {args.url} (events {', '.join(HOOK_EVENTS)}, active)")
            print(
                "The secret of an existing hook cannot be changed through the API; if it is not this "
                "service's secret, run with --replace."
            )
        else:
            hook = gitea.create_hook(owner, name, args.url, settings.webhook_secret, HOOK_EVENTS)
            print(
                f"{repo}: created hook {hook['id']} -> {args.url} (events {', '.join(HOOK_EVENTS)}, active, "
                "json, signed with the service's webhook secret)"
            )
            if not settings.webhook_secret_env:
                print(
                    f"The secret was generated and kept in {settings.data_dir / 'webhook_secret'}; the service "
                    "must run with the same SSD_DATA_DIR (or set SSD_WEBHOOK_SECRET)."
                )
    except GiteaError as exc:
        print(f"ssd gitea install-webhook: {_explain(exc, 'cannot manage hooks', repo)}", file=sys.stderr)
        return 1
    warning = _delivery_warning(args.url)
    if warning:
        print(warning)
    return 0


def check(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    gitea = _client(settings)
    ok = True
    try:
        version = gitea.version()
        user = gitea.user()
    except GiteaError as exc:
        print(f"ssd gitea check: {_explain(exc, 'cannot talk to Gitea', settings.gitea_url or '')}", file=sys.stderr)
        return 1
    login = user.get("login", "?")
    site_admin = bool(user.get("is_admin"))
    print(f"Gitea {gitea.base_url}: version {version}")
    print(f"token user: {login} (site admin: {'yes' if site_admin else 'no'})")
    if args.repo:
        owner, name = args.repo
        repo = f"{owner}/{name}"
        try:
            info = gitea.get_repo(owner, name)
            probe = (info.get("owner") or {}).get("login") or owner
            if probe.lower() == login.lower():
                probe = "ghost-permission-probe"  # anyone but ourselves: our own level is always readable
            level = gitea.permission(owner, name, probe)
            print(
                f"{repo}: permission lookups work (looked up {probe}: {level}); "
                f"hooks {'can' if (info.get('permissions') or {}).get('admin') else 'CANNOT'} be managed"
            )
        except GiteaForbidden as exc:
            ok = False
            print(f"{repo}: permission lookups FAIL: {exc.message}")
        except GiteaError as exc:
            ok = False
            print(f"{repo}: {_explain(exc, 'cannot check', repo)}")
    elif not site_admin:
        ok = False
        print(
            "permission lookups: not a site admin, so only repositories where this user is an admin work; "
            + ADMIN_TOKEN_HINT.format(owner="{owner}", repo="{repo}", user="{user}")
            + ". Run with --repo owner/name to check one."
        )
    else:
        print("permission lookups: ok (site admin)")
    return 0 if ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    gitea = subparsers.add_parser("gitea", help="set a repository up for the bot; check the Gitea token")
    commands = gitea.add_subparsers(dest="gitea_command", metavar="SUBCOMMAND")
    gitea.set_defaults(func=lambda args: (gitea.print_help(), 2)[1])

    p = commands.add_parser(
        "install-webhook",
        help="create the repository webhook the bot needs",
        description="Create a gitea-type JSON hook signed with the service's secret, for the events "
        f"{', '.join(HOOK_EVENTS)}, active. Needs a token with admin rights on the repository.",
    )
    p.add_argument("--repo", required=True, type=_split_repo, help="owner/name")
    p.add_argument("--url", required=True, help="where Gitea posts, e.g. https://bot.example/webhooks/gitea")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--update",
        action="store_true",
        help="if a hook for URL exists, rewrite its events and activate it (keeps its secret)",
    )
    mode.add_argument(
        "--replace",
        action="store_true",
        help="if a hook for URL exists, delete it and create it anew (with the current secret)",
    )
    p.set_defaults(func=install_webhook)

    p = commands.add_parser("check", help="whoami, server version, and whether the token can read permissions")
    p.add_argument("--repo", type=_split_repo, help="also check permission lookups and hook rights on owner/name")
    p.set_defaults(func=check)
