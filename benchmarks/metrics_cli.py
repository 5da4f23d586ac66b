"""``captune metrics`` end to end against a pycocoevalcap script, both as a user runs them.

Writes two evaluation sets as JSONL files (default 5,000 images x 5 references + 1 prediction,
fixed seed):

- realistic: the COCO-style captions of ``metrics_vs_pycocoevalcap.py`` with the usual mess of
  captions from the web mixed in (emoji, contractions, brackets, "p.m.", "U.S.-made", hashtags,
  @handles) in about one caption in four;
- adversarial: every caption drawn from emoji (with skin tones, flags and joiners), contractions,
  punctuation runs, non-Latin scripts (CJK, Arabic, Devanagari, Cyrillic, Greek, Hangul, Thai),
  200-word captions and empty captions, besides plain words.

Then, in each of ``--rounds`` rounds, it runs two processes back to back and times each from
start to exit:

- ``captune metrics -p preds.jsonl -r refs.jsonl --metrics bleu,rouge_l,cider --json``;
- ``python -c PYCOCOEVALCAP_SCRIPT preds.jsonl refs.jsonl``: reads the same files, runs
  pycocoevalcap's ``PTBTokenizer`` (the Java jar: the JVM start is in its time) on references and
  predictions, then ``Bleu(4)``, ``Rouge()``, ``Cider()``, and prints the values as JSON;

checks that the corpus values are identical (same floats, not merely close) and prints both times
and their ratio per round, then the median ratio.

Before the timed rounds, each command runs once untimed: as after any install, Python's bytecode
of both packages is then on disk (the children run without ``PYTHONDONTWRITEBYTECODE``, which
some environments set and which would make every run compile captune's modules afresh while
pip-installed pycocoevalcap comes compiled), the PTB lexer's rules are in captune's cache and
the files are in the page cache. ``--load`` keeps one other process busy on one core throughout.

    python benchmarks/metrics_cli.py [--images 5000] [--refs 5] [--rounds 3] [--corpus realistic,adversarial]
                                     [--load]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metrics_vs_pycocoevalcap import caption, scene

METRICS = "bleu,rouge_l,cider"
NAMES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")

PYCOCOEVALCAP_SCRIPT = """
import json, sys
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

preds, refs = read(sys.argv[1]), read(sys.argv[2])
gts = {r["image_id"]: [{"caption": c} for c in r["captions"]] for r in refs}
res = {p["image_id"]: [{"caption": p["caption"]}] for p in preds}
tok = PTBTokenizer()
gts, res = tok.tokenize(gts), tok.tokenize(res)
bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
rouge, _ = Rouge().compute_score(gts, res)
cider, _ = Cider().compute_score(gts, res)
values = {f"bleu_{k + 1}": b for k, b in enumerate(bleu)}
values.update(rouge_l=float(rouge), cider=float(cider))
print(json.dumps(values))
"""

# The mess of captions written by people on the web (realistic set).
MESS = (
    "it's", "don't", "can't", "they're", "we'll", "I'd", "isn't", "(left)", "[blurry]", "{sic}", "at 5 p.m.",
    "U.S.-made", "#sunset", "#NoFilter", "@john_doe", "@CityParks", "\U0001F600", "\U0001F436", "\u2764\ufe0f",
    "\U0001F44D\U0001F3FD", "lol", "w/", "&", "e.g.", "10:30", "$5", "50%", "rock'n'roll", "o'clock", "...",
    "!!", "ain't", "y'all", "\"cute\"", "'80s", "Mr. Smith", "Dr. Who", "St. Louis", "1/2", "3-year-old",
)
EMOJI = ("\U0001F600", "\U0001F602", "\U0001F44D\U0001F3FD", "\U0001F1EB\U0001F1F7", "\u2764\ufe0f",
         "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F436", "\u2600\ufe0f", "\U0001F355", "\u2728")
CONTRACTIONS = ("can't", "won't", "it's", "they're", "I'm", "we've", "shouldn't", "y'all", "ma'am", "'tis",
                "o'clock", "gonna", "cannot", "wanna", "ol'", "'em", "c'mon", "don't", "She'll", "'90s")
PUNCT_RUNS = ("!!!", "???", "?!?!", "...", ". . .", "----", "--", "***", ",,", ";;", "::", "!?", "((", "))",
              "\"\"", "''", "``", "~~~", "___", "###", "@@", "…", "—", "–", "«", "»", "“", "”")
SCRIPTS = ("一只猫坐在桌子上", "東京の駅で電車を待つ人々", "رجل يركب دراجة في الشارع", "एक लड़का पतंग उड़ा रहा है",
           "Собака бежит по пляжу", "ΣΟΦΙΑ ΚΑΙ ΟΔΟΣ", "Ένας σκύλος τρέχει", "해변에서 노는 아이들", "แมวนอนบนโซฟา",
           "שני אנשים הולכים", "Ünïcödé çåfé naïve", "Đường phố Hà Nội")


def messy(rng: random.Random, text: str) -> str:
    """``text`` with one to three pieces of web mess inserted at random word boundaries."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        words.insert(rng.randint(0, len(words)), rng.choice(MESS))
    return " ".join(words)


def realistic(images: int, refs: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    scenes = [scene(rng) for _ in range(images)]

    def one(s, noise):
        text = caption(rng, s, noise)
        return messy(rng, text) if rng.random() < 0.25 else text

    return [one(s, 0.35) for s in scenes], [[one(s, 0.15) for _ in range(refs)] for s in scenes]


def adversarial_caption(rng: random.Random, s: dict, noise: float) -> str:
    """A caption from the worst of what captions hold (or a plain one, one time in four)."""
    kind = rng.random()
    if kind < 0.05:
        return ""
    if kind < 0.10:  # 200 words, mess included
        words = [rng.choice((caption(rng, s, noise), rng.choice(MESS), rng.choice(SCRIPTS))) for _ in range(80)]
        return " ".join(" ".join(words).split(" ")[:200])
    if kind < 0.25:
        return caption(rng, s, noise)
    pools = (EMOJI, CONTRACTIONS, PUNCT_RUNS, SCRIPTS, MESS)
    words = caption(rng, s, noise).split(" ")
    for _ in range(rng.randint(2, 6)):
        pool = rng.choice(pools)
        piece = rng.choice(pool)
        glue = "" if pool is PUNCT_RUNS and rng.random() < 0.5 else " "
        k = rng.randint(0, len(words))
        if glue == "" and k > 0:
            words[k - 1] += piece
        else:
            words.insert(k, piece)
    return " ".join(words)


def adversarial(images: int, refs: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    scenes = [scene(rng) for _ in range(images)]
    return ([adversarial_caption(rng, s, 0.35) for s in scenes],
            [[adversarial_caption(rng, s, 0.15) for _ in range(refs)] for s in scenes])


CORPORA = {"realistic": realistic, "adversarial": adversarial}


def write_files(folder: Path, preds: list[str], refs: list[list[str]]) -> tuple[Path, Path]:
    p, r = folder / "preds.jsonl", folder / "refs.jsonl"
    with p.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps({"image_id": f"img{i:06d}", "caption": c}, ensure_ascii=False) + "\n"
                     for i, c in enumerate(preds))
    with r.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps({"image_id": f"img{i:06d}", "captions": c}, ensure_ascii=False) + "\n"
                     for i, c in enumerate(refs))
    return p, r


def captune_command() -> list[str]:
    """The ``captune`` console script of this interpreter's environment (``-m captune`` without one)."""
    script = Path(sys.executable).parent / "captune"
    return [str(script)] if script.exists() else [sys.executable, "-m", "captune"]


CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[dict, float]:
    """Run ``cmd`` to its end; its JSON output and wall seconds from start to exit."""
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=CHILD_ENV)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout), seconds


def run_round(preds: Path, refs: Path) -> tuple[dict, dict, float, float]:
    ours, ours_s = timed([*captune_command(), "metrics", "-p", str(preds), "-r", str(refs), "--metrics", METRICS,
                          "--json"])
    theirs, theirs_s = timed([sys.executable, "-c", PYCOCOEVALCAP_SCRIPT, str(preds), str(refs)])
    return ours, theirs, ours_s, theirs_s


def bench(name: str, folder: Path, args) -> float:
    preds, refs = write_files(folder, *CORPORA[name](args.images, args.refs, args.seed))
    run_round(preds, refs)  # untimed: bytecode, lexer cache and page cache as a user's second run has them
    ratios = []
    for k in range(args.rounds):
        ours, theirs, ours_s, theirs_s = run_round(preds, refs)
        differ = {n: (ours.get(n), theirs[n]) for n in NAMES if ours.get(n) != theirs[n]}
        if differ:
            raise SystemExit(f"{name}: values differ (captune, pycocoevalcap): {differ}")
        ratios.append(theirs_s / ours_s)
        print(f"{name} round {k + 1}: captune metrics {ours_s:.2f} s, pycocoevalcap {theirs_s:.2f} s, "
              f"{ratios[-1]:.1f}x; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{name}: values identical ({', '.join(f'{n} {ours[n]:.6f}' for n in NAMES)}); "
          f"ratio median {statistics.median(ratios):.1f}x, range {min(ratios):.1f}x - {max(ratios):.1f}x")
    return statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--corpus", default="realistic,adversarial", help="comma-separated: realistic, adversarial")
    ap.add_argument("--load", action="store_true", help="keep one other process busy on one core")
    args = ap.parse_args()
    nproc = os.cpu_count()
    print(f"{args.images} images x {args.refs} references; nproc {nproc}; Python {sys.version.split()[0]}; "
          f"other load: {'one busy process' if args.load else 'none started'}; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    load = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    try:
        with tempfile.TemporaryDirectory(prefix="captune-metrics-cli-") as tmp:
            for name in args.corpus.split(","):
                folder = Path(tmp) / name
                folder.mkdir()
                bench(name, folder, args)
    finally:
        if load:
            load.kill()


if __name__ == "__main__":
    main()
