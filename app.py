"""RepScope: `python app.py` serves the dashboard on http://127.0.0.1:8050 (embedded backend).

For production, `gunicorn app:server` serves the same app; set REDIS_URL to use Celery workers.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from dashboard.app import create_app
from dashboard.security import LOOPBACK, answer_to, check_bind

app = create_app()
server = app.server


def main(argv: list[str] | None = None) -> int:
    from compute.settings import get_settings
    from compute.sources.zoo_cache import ensure_zoo

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--debug", action="store_true", help="Dash debug mode (127.0.0.1 only)")
    args = parser.parse_args(argv)
    if args.debug and args.host not in LOOPBACK:
        parser.error("--debug runs code from the browser: it is allowed on 127.0.0.1 only")
    check_bind(args.host)
    answer_to(server, settings, args.host)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_zoo("digits", progress=True)
    from dashboard import services

    try:
        jobs = services.backend().name
    except RuntimeError as error:  # keep serving: the page shows the same message
        logging.getLogger("repscope").error("%s", error)
        jobs = "unavailable"
    print(f"RepScope on http://{args.host}:{args.port} (jobs: {jobs})", file=sys.stderr)
    # SIGTERM's default action ends the process at once, leaving its job processes running:
    # end it as Ctrl-C does, through the backend's close (which kills them).
    signal.signal(signal.SIGTERM, _stop)
    try:
        app.run(host=args.host, port=args.port, debug=args.debug)
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
    return 0


def _stop(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
