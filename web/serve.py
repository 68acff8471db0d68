"""Serve the demo page with a TF.js model on http://127.0.0.1:PORT/ (the pinned TF.js bundle from
rvm_export/runtimes/node/node_modules; run `make setup` first).

Usage: .venv/bin/python web/serve.py MODEL_DIR [--port 8000]
Then open the printed address in a browser, pick a video file or the webcam.
"""

import argparse
import time
from pathlib import Path

from rvm_export.runtimes.tfjs_browser import TFJS_MOUNTS, LocalServer

WEB_DIR = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a folder written by `rvm-export tfjs` (model.json + shards)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if not (args.model_dir / "model.json").is_file():
        parser.exit(2, f"serve.py: error: {args.model_dir}/model.json not found; pass a folder from rvm-export tfjs\n")
    server = LocalServer({**TFJS_MOUNTS, "/model/": args.model_dir.resolve(), "/": WEB_DIR}, args.port)
    print(f"demo on {server.origin}/  (model {args.model_dir}); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
