"""Long fuzz campaign over the readers (the CI suite runs a fixed, small number of cases).

    python tests/robustness/fuzz_long.py --cases 100000            # every format, random seed
    python tests/robustness/fuzz_long.py --cases 20000 --format tfjs --seed 7
    python tests/robustness/fuzz_long.py --atheris --format keras  # coverage-guided (atheris)

Each case applies 1-4 random mutations (see fuzzing.py) to a real model file and opens it. Every
finding (an exception other than InspectorError, a wrong shape, or a case past --timeout
seconds) is reported once per (type, file:line) with the mutations that produced it, and the
mutated files are kept under --out/<format>-<n>/ to reproduce with `quant-inspector info`.
Exits 1 when anything was found.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzzing import FORMATS, Mutation, Seed, apply, check, close_runners, make_seed

KINDS = ("flip", "flip", "truncate", "splice", "insert", "json", "json")


def random_mutations(rng: random.Random) -> list[Mutation]:
    return [
        Mutation(
            target=rng.randrange(4),
            kind=rng.choice(KINDS),
            pos=rng.randrange(2**31),
            arg=rng.randrange(2**16),
            data=rng.randbytes(rng.randint(1, 16)),
        )
        for _ in range(rng.randint(1, 4))
    ]


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "/inspector/" in f.filename] or frames
    last = inside[-1] if inside else None
    return f"{last.filename.rsplit('/inspector/', 1)[-1]}:{last.lineno}" if last else "?"


class Campaign:
    """Runs cases for one seed and keeps one example of each distinct finding."""

    def __init__(self, seed: Seed, out: Path, timeout: float) -> None:
        self.seed, self.out, self.timeout = seed, out, timeout
        self.counts = {"ok": 0, "error": 0, "finding": 0}
        self.findings: dict[tuple[str, str], list[Mutation]] = {}

    def run(self, mutations: list[Mutation]) -> None:
        apply(self.seed, mutations)
        try:
            self.counts[check(self.seed, self.timeout)] += 1
        except Exception as exc:
            self.counts["finding"] += 1
            key = (type(exc).__name__, _where(exc))
            if key not in self.findings:
                self.findings[key] = mutations
                keep = self.out / f"{self.seed.fmt}-{len(self.findings)}"
                shutil.copytree(self.seed.folder, keep, dirs_exist_ok=True)
                print(f"  FINDING {key[0]} at {key[1]}: {exc!s:.200}", flush=True)
                print(f"    kept in {keep}; mutations {mutations}", flush=True)


def run_random(campaign: Campaign, cases: int, rng: random.Random) -> None:
    start = time.perf_counter()
    for i in range(cases):
        campaign.run(random_mutations(rng))
        if (i + 1) % 5000 == 0:
            rate = (i + 1) / (time.perf_counter() - start)
            print(f"  {i + 1}/{cases} cases, {rate:.0f}/s, {campaign.counts}", flush=True)


def run_atheris(campaign: Campaign) -> None:
    import atheris  # optional: pip install atheris

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        muts = [
            Mutation(
                fdp.ConsumeIntInRange(0, 3),
                KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)],
                fdp.ConsumeIntInRange(0, 2**31),
                fdp.ConsumeIntInRange(0, 2**16),
                fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 16)),
            )
            for _ in range(fdp.ConsumeIntInRange(1, 4))
        ]
        campaign.run(muts)

    atheris.Setup([sys.argv[0]], one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000, help="cases per format")
    ap.add_argument("--format", choices=FORMATS, action="append", help="repeatable; default all")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case = a hang")
    ap.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    ap.add_argument("--atheris", action="store_true", help="coverage-guided, one format")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    work = Path(tempfile.mkdtemp(prefix="qi-fuzz-"))
    total_findings = 0
    try:
        for fmt in args.format or FORMATS:
            model = make_seed(fmt, work / fmt)
            if model is None:
                print(f"{fmt}: skipped (optional package or ../shared/models absent)")
                continue
            campaign = Campaign(model, args.out, args.timeout)
            print(f"{fmt}: {args.cases} cases, seed {seed}", flush=True)
            if args.atheris:
                run_atheris(campaign)
            run_random(campaign, args.cases, random.Random(f"{seed}-{fmt}"))
            print(f"{fmt}: {campaign.counts}, {len(campaign.findings)} distinct findings")
            total_findings += len(campaign.findings)
    finally:
        close_runners()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if total_findings else 0


if __name__ == "__main__":
    sys.exit(main())
