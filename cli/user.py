"""``bot_manager.py user``: manage the dashboard's users (``auth.users``): add, passwd, role, remove,
list, and totp (enrol an authenticator: the QR code and the secret shown once, a code asked back).

The file is ``$BOT_USERS_FILE``, else ``<secrets dir>/users.json`` (``core.paths``); the dashboard and the
worker read the same file. Passwords are asked for twice on the terminal (or read from stdin with
``--password-stdin``: one line), never taken from the command line, where ``ps`` would show them.
"""
from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

import auth.totp as totp
from auth.users import ROLES, UsersFile, check_password, default_path, users_path

HELP = "manage dashboard users: add, passwd, role, remove, list, totp"


def _file(arg: str | None) -> UsersFile:
    return UsersFile(Path(arg).expanduser() if arg else (users_path() or default_path()))


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("new password (12+ characters): ")
    check_password(first)
    if getpass.getpass("again: ") != first:
        raise ValueError("password: the two entries differ")
    return first


def _enrol(f: UsersFile, name: str, args: argparse.Namespace) -> int:
    if f.get(name) is None:
        raise ValueError(f"no user {name!r}")
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, name)
    if not args.no_qr:
        print(totp.qr_terminal(uri))
    print(f"secret (shown once; type it into the authenticator if you cannot scan): {secret}")
    for _ in range(3):
        print("code from the authenticator: ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input: nothing more will come
            break
        code = line.strip()
        res = totp.check(secret, code, None, time.time())
        if res.ok:
            f.enrol_totp(name, secret)
            print(f"TOTP enrolled for {name}; live actions now ask for a code")
            return 0
        print(f"refused: {res.reason}", file=sys.stderr)
    print("not enrolled: three codes refused (is the device's clock right?)", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py user", description=HELP)
    p.add_argument("--file", help="users file (default: $BOT_USERS_FILE, else ~/.config/tradebot/users.json)")
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("add", help="add a user")
    a.add_argument("name")
    a.add_argument("--role", choices=ROLES, default="viewer")
    a.add_argument("--password-stdin", action="store_true")
    pw = sub.add_parser("passwd", help="set a user's password (their sessions end)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    ro = sub.add_parser("role", help="change a user's role")
    ro.add_argument("name")
    ro.add_argument("role", choices=ROLES)
    rm = sub.add_parser("remove", help="remove a user")
    rm.add_argument("name")
    sub.add_parser("list", help="the users, their roles and whether TOTP is enrolled")
    t = sub.add_parser("totp", help="enrol (or re-enrol) a TOTP authenticator for a user")
    t.add_argument("name")
    t.add_argument("--reset", action="store_true", help="remove the user's TOTP instead")
    t.add_argument("--no-qr", action="store_true", help="print the secret only")
    args = p.parse_args(argv)
    f = _file(args.file)
    try:
        if args.action == "add":
            f.add(args.name, args.role, _password(args))
            print(f"user {args.name} added ({args.role}) in {f.path}")
            if users_path() is None:
                print(f"the dashboard and the worker read it when BOT_USERS_FILE={f.path} (make run sets it when "
                      "the default file exists)")
        elif args.action == "passwd":
            f.set_password(args.name, _password(args))
            print(f"password of {args.name} changed")
        elif args.action == "role":
            f.set_role(args.name, args.role)
            print(f"{args.name} is now {args.role}")
        elif args.action == "remove":
            f.remove(args.name)
            print(f"user {args.name} removed")
        elif args.action == "list":
            for u in f.names():
                print(f"{u['name']:20} {u['role']:14} totp {'yes' if u['totp'] else 'no'}")
        elif args.action == "totp":
            if args.reset:
                f.reset_totp(args.name)
                print(f"TOTP of {args.name} removed")
                return 0
            return _enrol(f, args.name, args)
    except ValueError as exc:  # UsersFileError included: a clear line, nothing written
        print(f"bot_manager.py user {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0
