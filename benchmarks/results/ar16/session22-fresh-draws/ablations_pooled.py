"""Session 22's ablation table over draws 2201 + 2202: run in the folder holding the two bench outputs d2201, d2202
(`ablations.sh 2201`, `ablations.sh 2202` after the draws' raw,scaling-ar runs); it reads their prompt records,
which are not kept here (only the summaries are)."""
import math

from arscale.bench.paired import load_records, paired_difference
from arscale.bench.runner import collect_summaries


def _mean(values):
    return sum(values) / len(values)


def _pooled_se(ses):  # the SE of a mean of independent draws
    return math.sqrt(sum(x * x for x in ses)) / len(ses)


variants = ["scaling-ar", "scaling-ar@noD", "scaling-ar@noB", "scaling-ar@noTok", "scaling-ar@termonly",
            "scaling-ar@schedonly", "scaling-ar@p10", "scaling-ar@p30", "scaling-ar@d02", "scaling-ar@d20", "scaling-ar@norec"]
runs = {s: load_records(f"d{s}") for s in (2201, 2202)}
sums = {s: {x["label"]: x for x in collect_summaries(f"d{s}")} for s in (2201, 2202)}
print("| variant | overall (480) | − raw, paired ± SE | − full ScalingAR, paired ± SE | tokens/prompt |")
print("|---|---|---|---|---|")
for v in variants:
    acc, d_raw, se_raw, d_full, se_full, tok = [], [], [], [], [], []
    for s in (2201, 2202):
        r = runs[s]
        a = paired_difference(r[("raw", 8)], r[(v, 8)])
        b = paired_difference(r[("scaling-ar", 8)], r[(v, 8)])
        acc.append(a["acc_b"])
        d_raw.append(a["diff"])
        se_raw.append(a["diff_se"])
        d_full.append(b["diff"])
        se_full.append(b["diff_se"])
        tok.append(sums[s][v]["cost_per_prompt"]["generated_tokens"])
    mean_acc, mean_tok = sum(acc) / 2, sum(tok) / 2
    full = "–" if v == "scaling-ar" else f"{100 * _mean(d_full):+.1f} ± {100 * _pooled_se(se_full):.1f}"
    print(f"| {v} | {100 * mean_acc:.1f} | {100 * _mean(d_raw):+.1f} ± {100 * _pooled_se(se_raw):.1f} | {full} | "
          f"{mean_tok:.0f} ({mean_tok / 2048:.2f}×) |")
