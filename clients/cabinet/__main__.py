"""``python -m clients.cabinet [--registration FILE] [--port 5001]``: the cabinet on a development server."""

import argparse
import os

from werkzeug.serving import run_simple

from . import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m clients.cabinet", description=__doc__)
    parser.add_argument(
        "--registration",
        default=os.environ.get("CABINET_REGISTRATION"),
        help="JSON of `idp clients create --json` (or CABINET_REGISTRATION)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args()
    run_simple(args.host, args.port, create_app({"REGISTRATION": args.registration}), threaded=True)


if __name__ == "__main__":
    main()
