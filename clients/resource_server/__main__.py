"""``python -m clients.resource_server --issuer URL --audience URI [--port 5003]``: the example API."""

from __future__ import annotations

import argparse

from . import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issuer", required=True, help="the provider's issuer, e.g. http://127.0.0.1:5000")
    parser.add_argument("--audience", required=True, help="this API's resource indicator (the tokens' aud)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5003)
    args = parser.parse_args()
    create_app(args.issuer, args.audience).run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
