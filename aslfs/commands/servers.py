"""``aslfs servers start|stop|status``: local Prefect and MLflow servers on 127.0.0.1 for browsing runs."""

from aslfs import servers


def add_arguments(parser):
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--root", default=".")
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--mlflow-port", type=int, default=5000)


def run(args) -> int:
    if args.action == "start":
        urls = servers.start(args.root, args.prefect_port, args.mlflow_port)
        for name, url in urls.items():
            print(f"{name}: {url}")
        print(f"to send flow runs to this Prefect server: export PREFECT_API_URL={urls['prefect']}/api")
        print("stop both with: aslfs servers stop")
    elif args.action == "stop":
        names = servers.stop(args.root)
        print("stopped: " + (", ".join(names) or "nothing was running"))
    else:
        for name, info in servers.status(args.root).items():
            print(f"{name}: {info['url']} pid {info['pid']} {'running' if info['running'] else 'not running'}")
    return 0
