"""``python -m clients.portal [--registration FILE] [--port 5002]``: the portal on a development server."""

import argparse
import os

from werkzeug.serving import run_simple

from . import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m clients.portal", description=__doc__)
    parser.add_argument(
        "--registration",
        default=os.environ.get("PORTAL_REGISTRATION"),
        help="JSON of `idp clients create --json` (or PORTAL_REGISTRATION)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    args = parser.parse_args()
    run_simple(args.host, args.port, create_app({"REGISTRATION": args.registration}), threaded=True)


if __name__ == "__main__":
    main()
