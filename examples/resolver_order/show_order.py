"""Configure the resolver order in authchain.toml and watch `explain` change.

python examples/resolver_order/show_order.py
"""

from __future__ import annotations

import os
from pathlib import Path

from authchain import Chain
from secret_tasks import ChainSecret

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "authchain.toml"


def main() -> dict[str, str]:
    os.environ["ORDER_DEMO_REPORT_TOKEN"] = "from-the-environment-not-real"  # noqa: S105 - made-up
    os.chdir(HERE)  # the config's relative .env path is resolved next to the config anyway
    winners = {}
    for profile in (None, "local"):
        chain = Chain.from_config(CONFIG, profile=profile)
        explanation = chain.explain("REPORT_TOKEN")
        print(f"--- profile: {profile or '(none: canonical order)'}")
        print(explanation)
        # The same chain drives a Secret task: it returns whatever explain calls the winner.
        ChainSecret("REPORT_TOKEN", chain=chain).run()
        winners[profile or "default"] = explanation.winner.source if explanation.winner else ""
    return winners


if __name__ == "__main__":
    main()
