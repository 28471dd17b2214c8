"""The ``kiosk`` command: run the kiosk, serve one service, train and export models, tell a story."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from kiosk.config import Settings, load_settings
from kiosk.events import SERVICES

logger = logging.getLogger("kiosk")


def _service_class(name: str):
    if name == "camera":
        from kiosk.camera.service import CameraService as cls
    elif name == "emotion":
        from kiosk.emotion.service import EmotionService as cls
    elif name == "story":
        from kiosk.story.service import StoryService as cls
    elif name == "illustrate":
        from kiosk.illustrate.service import IllustrateService as cls
    elif name == "narrate":
        from kiosk.voice.service import NarrateService as cls
    elif name == "dashboard":
        from kiosk.dashboard.service import DashboardService as cls
    else:
        from kiosk.web.service import WebService as cls
    return cls


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.camera.sources import SourceError
    from kiosk.modelstore.manifest import ModelError

    try:
        return _service_class(args.service)(settings).run()
    except (ModelError, SourceError, OSError) as exc:
        logger.error("%s cannot start: %s", args.service, exc)
        return 1


def cmd_staff(args: argparse.Namespace, settings: Settings) -> int:
    """Staff accounts. Removing an account or changing its password ends its sessions on the staff page:
    the page checks the account on every request; the sessions' rows are deleted here too when reachable."""
    import getpass

    from kiosk.dashboard.accounts import StaffAccounts, users_file

    accounts = StaffAccounts(users_file(settings))
    if args.action == "remove-user":
        if not accounts.remove(args.name):
            print(f"kiosk: no staff account {args.name}", file=sys.stderr)
            return 1
        print(f"staff account {args.name} removed; {_end_staff_sessions(settings, args.name)}")
        return 0
    existed = accounts.exists(args.name)
    if args.action == "passwd" and not existed:
        print(f"kiosk: no staff account {args.name} (add it with `kiosk staff add-user {args.name}`)", file=sys.stderr)
        return 1
    password = getpass.getpass(f"password for {args.name}: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    try:
        accounts.set_password(args.name, password)
    except ValueError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    ended = f"; password changed, {_end_staff_sessions(settings, args.name)}" if existed else ""
    print(f"staff account {args.name} saved in {accounts.path}{ended}")
    return 0


def _end_staff_sessions(settings: Settings, name: str) -> str:
    """Delete the account's rows from the session store when this machine's settings point at it (never
    creates one: the page refuses the sessions anyway, because the account's password generation changed)."""
    from kiosk.dashboard.sessions import StaffSessions, sessions_file

    path = sessions_file(settings)
    if not path.is_file():
        return "its staff page sessions end at their next request"
    store = StaffSessions(path)
    try:
        ended = store.end_for(name)
    finally:
        store.close()
    return f"{ended} staff page session(s) ended"


class Stop(Exception):
    """SIGTERM or Ctrl+C: stop everything that was started, then exit cleanly."""


def _raise_stop(signum, frame) -> None:
    raise Stop


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.source is not None:
        settings = settings.model_copy(update={"camera": settings.camera.model_copy(update={"source": args.source})})
    from kiosk.camera.sources import SourceError, resolve

    if args.once and args.source is None:
        print("kiosk: --once needs --source PATH (a photo, video or folder)", file=sys.stderr)
        return 2
    try:
        spec = resolve(settings.camera.source)
    except SourceError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    if args.once:
        from kiosk.once import run_once

        # from here on, a stop request unwinds through the `finally` blocks that stop brokers and services
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGINT, _raise_stop)

        try:
            return run_once(settings, args.source, timeout=args.timeout)
        except Stop:
            return 130
    from kiosk.supervisor import Supervisor, describe

    if spec.kind == "sample":
        logger.warning("no camera found and no SOURCE given: showing the sample photo (%s)", spec.target)
    supervisor = Supervisor(settings, list(SERVICES))

    def request_stop(signum, frame) -> None:
        # Only a flag: an exception raised from a signal handler can land in a fork or logging callback,
        # where Python swallows it, and the stop would be lost.
        supervisor.request_stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        supervisor.start()
        if not supervisor.stopping.is_set():
            logger.info("kiosk running: %s", describe(settings))
            print(
                f"Kiosk page: http://{settings.web.host}:{settings.web.port}/  "
                f"staff page: http://{settings.dashboard.host}:{settings.dashboard.port}/  (Ctrl+C stops)",
                flush=True,
            )
            supervisor.watch()
        logger.info("stopping")
    except Exception as exc:
        print(f"kiosk: could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    return 0


def cmd_emotion(args: argparse.Namespace, rest: list[str]) -> int:
    if args.action == "train":
        from kiosk.emotion.train import main
    elif args.action == "export":
        from kiosk.emotion.export import main
    elif args.action == "eval":
        from kiosk.emotion.evaluate import main
    elif args.action == "card":
        from kiosk.emotion.card import main
    else:
        from kiosk.emotion.hygiene import main
    return main(rest)


def cmd_story(args: argparse.Namespace, settings: Settings) -> int:
    from kiosk.events import Attributes
    from kiosk.story.factory import build_storyteller
    from kiosk.story.teller import Telling

    teller, problem = build_storyteller(settings.story)
    if args.action == "eval":
        return story_eval(args, settings, teller, problem)
    attributes = Attributes(age_group=args.age_group, clothing_colour=args.clothing_colour, glasses=args.glasses)
    telling = next(s for s in teller.tell(args.emotion, attributes, seed=args.seed) if isinstance(s, Telling))
    story = telling.story
    result = {
        "emotion": story.emotion,
        "title": story.title,
        "hero": story.hero.looks,
        "scenes": [{"text": s.text, "illustration_prompt": s.illustration_prompt} for s in story.scenes],
        "model": telling.generator,
        "fallback": telling.fallback,
        "problem": problem,
        "gates": {"attempts": telling.attempts, "rejections": telling.rejections},
        "candidates": [c.summary() for c in telling.candidates],
        "latency_ms": round(telling.latency_ms, 1),
        "first_words_ms": round(telling.first_words_ms, 2),
        "tokens": telling.tokens,
        "tokens_per_s": round(telling.tokens_per_s, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(story.title, *(s.text for s in story.scenes), sep="\n\n")
    return 0


def story_eval(args: argparse.Namespace, settings: Settings, teller, problem: str | None) -> int:
    from kiosk.story.evaluate import evaluate, write_stories
    from kiosk.story.factory import build_storyteller
    from kiosk.story.textmodel import TextModel

    judge = TextModel()
    report = evaluate(teller, judge, args.n) | {"problem": problem}
    if args.stories:
        write_stories(teller, judge, args.stories)
        report["stories_file"] = str(args.stories)
    # the on-emotion gate uses the same MiniLM judge as the alignment figure: measure without it too
    emotion_of, teller.emotion_of = teller.emotion_of, None
    report["without_on_emotion_gate"] = evaluate(teller, judge, args.n)["overall"]
    teller.emotion_of = emotion_of
    if args.compare_base and settings.story.adapter_path is not None:
        base_cfg = settings.story.model_copy(update={"adapter_path": None})
        base_teller, _ = build_storyteller(base_cfg)
        report["base_model"] = evaluate(base_teller, judge, args.n)["overall"] | {"generator": base_teller.name}
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def cmd_models(args: argparse.Namespace, rest: list[str]) -> int:
    from kiosk.modelstore.cli import main

    setup_logging(args.verbose)
    return main([args.action, *rest], lambda: load_settings(args.config))


def version() -> str:
    """The installed distribution's version (what a support request should quote)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("emotionai-kiosk")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="EmotionAI kiosk: a comforting story for a feeling.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--config", type=Path, help="TOML or JSON settings file (or KIOSK_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the broker and all services (development, demonstration)")
    run.add_argument("--source", help="camera index, video, image or folder (default: camera, else sample photo)")
    run.add_argument("--once", action="store_true", help="one visit end to end, print events as JSON lines")
    run.add_argument("--timeout", type=float, default=60.0, help="seconds for --once before giving up")

    serve = sub.add_parser("serve", help="run one service (what systemd and `kiosk run` start)")
    serve.add_argument("service", choices=SERVICES)

    emotion = sub.add_parser(
        "emotion",
        help="train, export, evaluate the emotion model; check data hygiene",
        description="the emotion model: `kiosk emotion ACTION --help` for each action",
        add_help=False,
    )
    emotion.add_argument("action", nargs="?", choices=["train", "export", "eval", "hygiene", "card"])

    story = sub.add_parser("story", help="tell one story")
    story_sub = story.add_subparsers(dest="action", required=True)
    generate = story_sub.add_parser("generate")
    generate.add_argument(
        "--emotion", required=True, choices=["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    )
    generate.add_argument("--age-group", choices=["young child", "teenager", "young adult"])
    generate.add_argument("--seed", type=int)
    generate.add_argument("--clothing-colour")
    generate.add_argument("--glasses", action="store_true", default=None)
    generate.add_argument("--json", action="store_true")
    story_sub.add_parser("check", help="safety verdict per sentence (stdin or FILE; --json)", add_help=False)
    story_sub.add_parser("tune", help="LoRA fine-tune of the story LLM on corpus/comfort", add_help=False)
    story_eval = story_sub.add_parser("eval", help="alignment, gates, fallback and latency per emotion")
    story_eval.add_argument("--n", type=int, default=10, help="stories per emotion")
    story_eval.add_argument("--json", action="store_true")
    story_eval.add_argument("--stories", type=Path, help="also write 21 stories (3 per emotion) as Markdown here")
    story_eval.add_argument("--compare-base", action="store_true", help="also measure the base model, no adapter")

    sub.add_parser("illustrate", help="kiosk illustrate eval: picture latency and CLIPScore", add_help=False)
    models = sub.add_parser(
        "models", help="pull | keygen | bundle | install | check | deploy (signed model updates)", add_help=False
    )
    models.add_argument("action", nargs="?", choices=["pull", "keygen", "bundle", "install", "check", "deploy"])

    staff = sub.add_parser("staff", help="staff page accounts")
    staff_sub = staff.add_subparsers(dest="action", required=True)
    add_user = staff_sub.add_parser("add-user", help="add or change a staff account (password from stdin/prompt)")
    add_user.add_argument("name")
    passwd = staff_sub.add_parser("passwd", help="change a staff password and end that account's sessions")
    passwd.add_argument("name")
    remove_user = staff_sub.add_parser("remove-user", help="remove a staff account and end its sessions")
    remove_user.add_argument("name")

    safety = sub.add_parser(
        "safety",
        help="train the story safety classifier on corpus/safety",
        description="the story safety classifier: `kiosk safety train --help`",
        add_help=False,
    )
    safety.add_argument("action", nargs="?", choices=["train"])
    # These pass their remaining arguments to their own parsers (add_help=False above), so without an action
    # `--help` is answered here: every level of the command answers --help with exit status 0.
    parser.delegates = {"emotion": emotion, "models": models, "safety": safety}  # type: ignore[attr-defined]

    sub.add_parser(
        "appliance", help="install | uninstall the appliance's system files (make install does)", add_help=False
    )

    sub.add_parser("config-schema", help="print the JSON schema of the settings file")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in parser.delegates and args.action is None:  # type: ignore[attr-defined]
        if args.command == "models":
            from kiosk.modelstore.cli import build_parser as models_parser

            models_parser().print_help()
        else:
            parser.delegates[args.command].print_help()  # type: ignore[attr-defined]
        return 0 if {"-h", "--help"} & set(rest) else 2
    if args.command == "emotion":
        return cmd_emotion(args, rest)
    if args.command == "models":
        return cmd_models(args, rest)
    if args.command == "appliance":
        from kiosk.appliance import main as appliance_main

        setup_logging(args.verbose)
        return appliance_main(rest)
    if args.command == "illustrate":
        from kiosk.illustrate.evaluate import main as illustrate_main

        return illustrate_main(rest[1:] if rest[:1] == ["eval"] else rest)
    if args.command == "story" and args.action == "check":
        from kiosk.safety.checkcli import main as check_main

        setup_logging(args.verbose)
        return check_main(rest)
    if args.command == "story" and args.action == "tune":
        from kiosk.story.tuning.lora import main as tune_main

        return tune_main(rest)
    if args.command == "safety":
        from kiosk.safety.train import main as safety_train_main

        return safety_train_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    setup_logging(args.verbose)
    if args.command == "config-schema":
        print(json.dumps(Settings.model_json_schema(), indent=2))
        return 0
    try:
        settings = load_settings(args.config)
    except (OSError, ValueError) as exc:
        print(f"kiosk: bad settings: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return cmd_serve(args, settings)
    if args.command == "run":
        return cmd_run(args, settings)
    if args.command == "staff":
        return cmd_staff(args, settings)
    return cmd_story(args, settings)
