"""The floor of tiny tales: the best validation loss any model can reach (lessons 01 and 06).

    python benchmarks/tales_floor.py [--n 100000] [--seed 0] [--json benchmarks/results/tales_floor.json]

Estimates H(story) = E[-log p(story)] by averaging the exact -log p (``minidlm.floor``) over
``--n`` stories drawn by the generator, and divides by the L - 1 = 63 counted tokens of a
64-token row. Also reports the share of each middle-sentence count, the probability mass of the
shipped corpus (the duplicates ``generate_tales`` drops move the floor by at most
-log(1 - mass) per story) and the shipped AR model's validation loss for comparison.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minidlm import tales  # noqa: E402
from minidlm.data import load_tales  # noqa: E402
from minidlm.floor import corpus_entropy, floor_nats_per_token, story_log_prob  # noqa: E402

METHOD = (
    "Exact log p(story) from the text: the story is parsed back into the generator's choices "
    "(each shown choice recoverable, checked by enumeration in tests/unit/test_floor.py, so no two "
    "choice paths give the same text); choices the text does not show (a cast field no chosen "
    "template uses, a spot/feeling drawn for a sentence without that slot) are not counted; the "
    "too-long rejection of _generate_story (redraw middles and every spot/feeling, one middle "
    "fewer after 5 failures) is included exactly: the failure probability q_n of an attempt "
    "with n middles is computed by enumerating sentence lengths, and p sums over the first "
    "middle count and the attempts at which the story could be accepted. H(story) is the mean of "
    "-log p over n independent generator draws (unbiased; standard error = sample std / sqrt(n)). "
    "One story per 64-token row ([BOS] story [EOS] padding, every word or mark one BPE token, "
    "at most 60), losses divide by the 63 tokens after [BOS], so floor = H(story) / 63.")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--L", type=int, default=64)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "tales_floor.json"))
    a = ap.parse_args(argv)
    t0 = time.time()
    ent = corpus_entropy(a.n, a.seed)
    fl = floor_nats_per_token(a.L, entropy=ent)
    seconds_entropy = time.time() - t0

    rng = random.Random(a.seed + 1)           # the shape of the distribution: middle counts
    middles = Counter(len(tales.split_sentences(tales._generate_story(rng))) - 4 for _ in range(20000))
    corpus = load_tales()
    mass = sum(math.exp(story_log_prob(s)) for s in corpus)
    card = json.loads((ROOT / "data" / "checkpoints" / "tales-ar-nano" / "card.json").read_text())

    res = {
        "story_entropy": {"nats": ent["nats"], "se_nats": ent["se_nats"], "bits": ent["bits"],
                          "se_bits": ent["se_bits"], "std_nats_per_story": ent["std_nats"],
                          "n_samples": ent["n"], "seed": ent["seed"]},
        "floor": {"L": fl["L"], "counted_tokens": fl["counted_tokens"],
                  "nats_per_token": fl["nats_per_token"], "se_nats_per_token": fl["se"],
                  "bits_per_token": fl["bits_per_token"],
                  "se_bits_per_token": fl["se"] / math.log(2)},
        "middle_sentences_share": {str(k): middles[k] / 20000 for k in sorted(middles)},
        "shipped_corpus": {"stories": len(corpus), "probability_mass": mass,
                           "max_floor_shift_nats_per_token": -math.log1p(-mass) / fl["counted_tokens"]},
        "shipped_ar": {"name": card["name"], "val_loss": card["val_loss"],
                       "gap_nats_per_token": card["val_loss"] - fl["nats_per_token"],
                       "gap_nats_per_story": (card["val_loss"] - fl["nats_per_token"]) * fl["counted_tokens"]},
        "method": METHOD,
        "command": "python benchmarks/tales_floor.py" + "".join(f" {x}" for x in (argv or sys.argv[1:])),
        "seconds": round(time.time() - t0, 1),
        "seconds_entropy": round(seconds_entropy, 1),
        "machine": f"{platform.machine()} {platform.system()}, python {platform.python_version()}",
    }
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k] for k in ("story_entropy", "floor", "shipped_corpus", "shipped_ar")}, indent=1))
    return res


if __name__ == "__main__":
    main()
