"""Near-dedup drops a sample only when the exact Jaccard with an earlier one reaches the threshold."""
import random

from filters.dedup import InstructionDeduplicator
from filters.text import normalise_for_match


def _shingles(t: str, n: int = 5) -> set[str]:
    t = normalise_for_match(t)
    return {t[i:i + n] for i in range(len(t) - n + 1)}


def _jaccard(a: str, b: str) -> float:
    x, y = _shingles(a), _shingles(b)
    return len(x & y) / len(x | y)


def _pairs(rng: random.Random, n_pairs: int = 400):
    """(base, variant, exact Jaccard) with Jaccard spread over 0.6-0.95: a random Han string and a
    copy with k characters substituted at random positions."""
    out = []
    while len(out) < n_pairs:
        base = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(120, 220)))
        k = rng.randint(1, 12)
        chars = list(base)
        for pos in rng.sample(range(len(chars)), k):
            chars[pos] = chr(rng.randint(0x4E00, 0x9FA5))
        var = "".join(chars)
        j = _jaccard(base, var)
        if 0.6 <= j <= 0.95:
            out.append((base, var, j))
    return out


def test_no_pair_below_threshold_is_dropped():
    rng = random.Random(7)
    pairs = _pairs(rng)
    dd = InstructionDeduplicator(threshold=0.8)
    dropped_below, kept_above, n_above = [], 0, 0
    for i, (base, var, j) in enumerate(pairs):
        assert dd.check(f"b{i}", base) is None  # unrelated random bases never collide
        dup = dd.check(f"v{i}", var)
        if dup is not None:
            assert dup == f"b{i}"
            assert dd.last_jaccard is not None and abs(dd.last_jaccard - j) < 1e-3  # the exact value, not an estimate
            if j < 0.8:
                dropped_below.append(j)
        elif j >= 0.85:
            kept_above += 1
        n_above += j >= 0.85
    assert not dropped_below, f"dropped pairs below the threshold: {sorted(dropped_below)[:10]}"
    # the verification had work to do: LSH proposed pairs below the threshold and they were refuted
    assert sum(0.66 <= j < 0.8 for _, _, j in pairs) > 50 and dd.rejected_candidates > 0
    # and it does not cost recall well above the threshold (LSH at 128 permutations finds them)
    assert n_above > 50 and kept_above / n_above < 0.05


def test_formatting_only_and_exact_duplicates_still_dropped():
    dd = InstructionDeduplicator(threshold=0.8)
    base = ("某公司发行了一张债券，债券面值为20000元，年利率为6%，到期日为2年后。请计算债券的实际利率和名义利率之间的差异，"
            "并说明在通货膨胀率为3%的情况下，投资者持有该债券到期的实际收益是多少，以及应如何评价这项投资。")
    assert dd.check("a", base) is None
    assert dd.check("b", base.replace("，", ",") + " ") == "a" and dd.last_jaccard == 1.0
    assert dd.check("c", base.replace("3%", "4%")) == "a" and 0.8 <= dd.last_jaccard < 1.0
