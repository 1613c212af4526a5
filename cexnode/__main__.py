"""cexnode command line: ``python -m cexnode --config FILE [--duration S]`` and subcommands.

Exit codes: 0 ok, 2 bad input (config, arguments, unreadable file) with a one-paragraph message
naming the exact key and line, never a traceback; 1 runtime failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal, InvalidOperation

from cexnode.adapters import registry as venue_registry
from cexnode.config import ConfigError, json_schema, load_config, markdown_reference, redacted_dict
from cexnode.storage.tradedb import parse_since

# The subcommands' entry points (node, record, replay, scan, reports, decode) are imported where the
# command runs: `check` and `config` must not import the node, its engine, capture or reports.

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2

SUBCOMMANDS = ("run", "check", "config", "sim", "record", "decode", "replay", "scan", "trades", "pnl", "db")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is 2 as well; keep one paragraph
        self.print_usage(sys.stderr)
        sys.stderr.write("cexnode: error: %s\n" % message)
        sys.exit(EXIT_BAD_INPUT)


def _duration(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected seconds as a number, found %r" % text) from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("expected a positive number of seconds, found %r" % text)
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cexnode", description="Cython cross-exchange arbitrage node (venues: %s)."
                % ", ".join(d.title for d in venue_registry.descriptors()))
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run the node (the default command)")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument("--duration", type=_duration, default=None, help="stop after S seconds")

    chk = sub.add_parser("check", help="validate a config and exit")
    chk.add_argument("--config", required=True)

    cfg = sub.add_parser("config", help="show the effective config or its schema")
    csub = cfg.add_subparsers(dest="config_command", parser_class=_Parser, required=True)
    show = csub.add_parser("show", help="effective config as JSON, secrets redacted")
    show.add_argument("--config", required=True)
    schema = csub.add_parser("schema", help="JSON Schema of the config")
    schema.add_argument("--markdown", action="store_true", help="the config reference of docs/configuration.md instead")

    sim = sub.add_parser("sim", help="run the exchange simulator alone")
    sim.add_argument("--config", required=True)
    sim.add_argument("--duration", type=_duration, default=None)

    rec = sub.add_parser("record", help="run the node and record every frame and REST answer it gets to a capture")
    rec.add_argument("--config", required=True)
    rec.add_argument("--out", required=True)
    rec.add_argument("--duration", type=_duration, default=None)
    rec.add_argument("--opportunities", default=None, metavar="FILE",
                     help="also write the opportunities the node sees, one JSON line each (as replay writes them)")

    dec = sub.add_parser("decode", help="raw frames of a capture -> one normalized event per line")
    dec.add_argument("--venue", required=True, choices=venue_registry.names())
    dec.add_argument("capture")

    rep = sub.add_parser("replay", help="run the engine on a capture (trading off), deterministically")
    rep.add_argument("--config", required=True)
    rep.add_argument("--capture", required=True)
    rep.add_argument("--dump-books", action="store_true")

    scan = sub.add_parser("scan", help="run the node with trading off: live table of the best routes, then a report")
    scan.add_argument("--config", required=True)
    scan.add_argument("--duration", type=_duration, default=None, help="stop after S seconds (default: Ctrl-C)")
    scan.add_argument("--size", type=_quote, default=None, metavar="QUOTE",
                      help="quote notional the routes are priced at (default: arbitrage.max_notional)")
    scan.add_argument("--format", choices=("table", "csv", "json"), default="table",
                      help="of the closing report: table (default), csv, or json (one object per line)")
    scan.add_argument("--top", type=_count, default=20, metavar="N", help="routes in the live table (default 20)")
    scan.add_argument("--out", default=None, metavar="FILE", help="write the closing report there (default: stdout)")

    fmt_help = "table (default: aligned text), csv, or json (one object per line; exact decimals)"
    trd = sub.add_parser("trades", help="trade history from the trade database (storage.path)")
    trd.add_argument("--config", required=True)
    trd.add_argument("--since", type=_since, default=None, metavar="DATE",
                     help="trades started at or after DATE (YYYY-MM-DD or ISO 8601 time; UTC unless it says)")
    trd.add_argument("--route", default=None, metavar="R", help="only route R (its name as in the audit log)")
    trd.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    pnl = sub.add_parser("pnl", help="realised P&L and fees from the trade database")
    pnl.add_argument("--config", required=True)
    pnl.add_argument("--by", choices=("day", "route", "asset"), default="route",
                     help="group by UTC day, route (default) or base asset")
    pnl.add_argument("--format", choices=("table", "csv", "json"), default="table", help=fmt_help)

    db = sub.add_parser("db", help="the trade database")
    dsub = db.add_subparsers(dest="db_command", parser_class=_Parser, required=True)
    reb = dsub.add_parser("rebuild", help="rebuild the trade database from the audit log (idempotent)")
    reb.add_argument("--config", required=True)
    return p


def _quote(text: str) -> Decimal:
    try:
        v = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError("expected a quote amount, found %r" % text) from None
    if not v.is_finite() or v <= 0:
        raise argparse.ArgumentTypeError("expected a positive quote amount, found %r" % text)
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, found %r" % text) from None
    if v < 1:
        raise argparse.ArgumentTypeError("expected at least 1, found %r" % text)
    return v


def _since(text: str) -> int:
    try:
        return parse_since(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write("cexnode: %s\n" % message)
    return code


def _load(path: str):
    return load_config(path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `python -m cexnode --config FILE` runs the node: `run` is the default command.
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["run"] + argv
    args = build_parser().parse_args(argv)

    try:
        if args.command == "config" and args.config_command == "schema":
            if args.markdown:
                sys.stdout.write(markdown_reference())
            else:
                json.dump(json_schema(), sys.stdout, indent=2)
                sys.stdout.write("\n")
            return EXIT_OK
        if args.command == "decode":
            return _decode(args)
        cfg = _load(args.config)
        if args.command == "check":
            venues = ", ".join(n for n, v in cfg.venues.enabled()) or "none enabled"
            print("%s: ok (venues: %s; routes: %d; mode: %s)" % (args.config, venues, len(cfg.arbitrage.routes), cfg.trading.mode))
            return EXIT_OK
        if args.command == "config":
            json.dump(redacted_dict(cfg), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return EXIT_OK
        if args.command == "run":
            from cexnode.node import run_node  # lazy: see the note under the imports
            return run_node(cfg, config_path=args.config, duration=args.duration)
        if args.command == "sim":
            from cexnode.node import run_sim
            return run_sim(cfg, duration=args.duration)
        if args.command == "record":
            from cexnode.capture.record import record_main
            return record_main(cfg, args.out, args.duration, config_path=args.config,
                               opportunities=args.opportunities)
        if args.command == "replay":
            from cexnode.capture.replay import replay_main
            return replay_main(cfg, args.capture, dump_books=args.dump_books, out=sys.stdout)
        if args.command == "scan":
            from cexnode.scan.main import scan_main
            return scan_main(cfg, duration=args.duration, size=args.size, fmt=args.format, top=args.top,
                             out=args.out, config_path=args.config)
        if args.command == "trades":
            from cexnode.storage.report import trades_main
            return trades_main(cfg, since_ns=args.since, route=args.route, fmt=args.format, out=sys.stdout)
        if args.command == "pnl":
            from cexnode.storage.report import pnl_main
            return pnl_main(cfg, by=args.by, fmt=args.format, out=sys.stdout)
        if args.command == "db":
            from cexnode.storage.report import rebuild_main
            return rebuild_main(cfg, out=sys.stdout)
    except ConfigError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130
    return _fail("unknown command %r" % args.command)


def _decode(args) -> int:
    if not os.path.isfile(args.capture):
        return _fail("capture file not found or not a file: %s" % args.capture)
    try:
        from cexnode.capture.decode import decode_capture  # lazy: a missing build is reported below
    except ImportError as e:  # the parsers are compiled; a missing build is a clear runtime error
        return _fail(str(e), EXIT_RUNTIME)
    try:
        return decode_capture(args.venue, args.capture, sys.stdout)
    except (OSError, ValueError) as e:
        return _fail("cannot read capture %s: %s" % (args.capture, e))


def _entry() -> int:
    try:
        return main()
    except BrokenPipeError:  # `cexnode config show | head`: not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(_entry())
