"""ScalingAR (arXiv 2509.26376): reward-free test-time scaling for next-token image generators.

For each prompt, N candidates decode in parallel (all prompts share one batched forward). Every
step, from the model's own logits only (Algorithm 1):

1. Profile (`scaling_ar_profile.ConfidenceProfile`; the signals are in `search.confidence`): token confidence,
   worst-block stability, the intrinsic score I, the drift score D from KL(cond || uncond), the unified
   confidence C and the rebound R.
2. Guidance (`scaling_ar_profile.guidance_schedule`): a CFG scale per candidate; the token is drawn from
   uncond + s (cond - uncond) with the base sampler.
3. Termination (`scaling_ar_termination.TerminationPolicy`, after warm-up): flag, probation, terminate. A terminated
   candidate's rows leave the batch (`traj.select`), so its KV cache rows stop costing compute; freed budget is not
   reallocated.
Final pick: the survivor with the highest final C (`final_pick="last"`, the paper's rule; "mean"
ranks by the mean C after warm-up instead). No partial decoding, no reward model. Every constant is a field of
`ScalingARConfig` (`scaling_ar_config`) with the paper's default.

Telemetry (`SearchResult.telemetry`): `prompts[p]` = one trace per candidate (`candidate`, `node`,
per-step lists `C`, `I`, `D`, `R`, `guidance`, `s_tok`, `B`, `K`, `pmi` — log p_cond − log p_uncond of
the sampled token, not used by the method — and `ended` / `reason` if it was terminated; with
`record_previews`, a terminated one also has the `tokens` it generated and their decode, `preview`, a
uint8 image: the only value that is not plain JSON), `events` (flag / recover / settle, a flag lifted because
the candidate is among its prompt's last survivors / terminate, with prompt, candidate, step, C),
`threshold[p]` (theta per step), `tokens_per_prompt` (generated image tokens of each prompt, a CFG pair counted
once) and `tokens_per_image` (their mean), `cost_per_prompt` (each prompt's own tokens, transformer and decode
FLOPs and decodes, adding up to the run's cost), and the step constants in use.
`write_extras` (`scaling_ar_plot`) plots the C trajectories with the prune events, and every candidate under them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from arscale.errors import ArscaleError, ArscaleWarning
from arscale.generators.sampling import cfg_mix, sample_per_row
from arscale.search import confidence as sig
from arscale.search.base import strategy_repr
from arscale.search.result import Candidate, CostRecord, SearchResult
from arscale.search.rollout import (
    check_n,
    check_prompt_list,
    check_prompt_offset,
    check_step_advanced,
    count_decode,
    to_uint8,
    token_forward_flops,
)
from arscale.search.scaling_ar_config import ScalingARConfig
from arscale.search.scaling_ar_plot import write_extras
from arscale.search.scaling_ar_profile import ConfidenceProfile, ProfileStep
from arscale.search.scaling_ar_termination import TerminationPolicy

__all__ = ["ScalingAR", "ScalingARConfig", "write_extras"]


class ScalingAR:
    """ScalingAR on a next-token model: a confidence profile prunes candidates and schedules their guidance; no
    reward (settings: `ScalingARConfig`, docs/strategies.md)."""

    name = "scaling-ar"
    uses_reward = False  # `scorer` is accepted (one interface) and ignored
    Config = ScalingARConfig

    def __init__(self, config: ScalingARConfig | None = None):
        self.config = config or ScalingARConfig()

    __repr__ = strategy_repr

    def check_generator(self, generator: Any) -> None:
        """A next-token model, refused in one line otherwise (`bench` asks before any label runs)."""
        for attr in ("next_logits", "advance", "finish"):
            if not hasattr(generator, attr):
                name = getattr(generator, "name", type(generator).__name__)
                raise ArscaleError(f"ScalingAR steers token by token: it needs a next-token model (shapeworld-ar, "
                                   f"llamagen-...), and {name} has no {attr}() (next-scale models: tts-var)")

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """ScalingAR on a next-token model: `n` candidates per prompt decode together; low-confidence ones are
        terminated after the warm-up, each survivor has its own guidance, and the pick is the survivor with the
        highest final confidence. No reward: `scorer` is ignored and a candidate's score is its confidence.
        Candidates are the survivors; `telemetry` holds every candidate's profile, the events and the cost."""
        n = check_n(n)
        self.config.check()
        if self.config.terminate and n > 1 and self.config.min_survivors >= n:
            warnings.warn(f"ScalingAR: min_survivors {self.config.min_survivors} keeps all {n} candidates, so none is "
                          "terminated (terminate=False says so on purpose)", ArscaleWarning, stacklevel=2)
        self.check_generator(generator)
        prompts = check_prompt_list(prompts)
        check_prompt_offset(prompt_offset)
        cost = CostRecord()
        t0 = time.perf_counter()
        candidates: list[list[Candidate]] = []
        as_run: list[Any] = []  # the prompts as the generator read them (a class index "7" -> 7), as other strategies'
        telemetry: dict[str, Any] = {"prompts": [], "events": [], "threshold": [], "cost_per_prompt": []}
        tree = None
        step_size = self.config.prompt_batch
        for start in range(0, len(prompts), step_size):
            chunk = prompts[start:start + step_size]
            cands, tele, chunk_tree, uncounted, read = self._run_chunk(generator, chunk, n, seed,
                                                                       prompt_offset + start, start, cost)
            as_run += read
            t0 += uncounted  # telemetry-only time (a FLOP-counting repeat of the decode, previews)
            if tree is None:
                tree = chunk_tree
            else:  # a later chunk's node ids and prompt indices are its own: move them past the earlier chunks'
                shift = tree.extend(chunk_tree, prompt_shift=start)
                for c in (c for per in cands for c in per):
                    c.node += shift
                for item in [*(tr for per in tele["prompts"] for tr in per), *tele["events"]]:
                    item["node"] += shift
            candidates += cands
            for key in ("prompts", "threshold", "cost_per_prompt"):
                telemetry[key] += tele[key]
            telemetry["events"] += tele["events"]
            merged = ("prompts", "events", "threshold", "cost_per_prompt")
            telemetry.update({k: v for k, v in tele.items() if k not in merged})
        cost.total_wall = time.perf_counter() - t0
        telemetry["tokens_per_image"] = cost.generated_tokens / max(1, len(prompts))
        telemetry["tokens_per_prompt"] = [c["generated_tokens"] for c in telemetry["cost_per_prompt"]]
        return SearchResult(as_run, candidates, tree, cost, self.name, self.config.to_dict(), telemetry)

    # -- one batch of prompts ----------------------------------------------------------------------
    def _run_chunk(self, gen: Any, prompts: list[str], n: int, seed: int, prompt_offset: int, index_offset: int,
                   cost: CostRecord):
        cfg = self.config
        T = gen.num_tokens
        warmup = cfg.warmup_steps(T)
        window = cfg.recovery_steps(T)
        s_base = float(cfg.cfg_base if cfg.cfg_base is not None else getattr(gen, "cfg", 1.0))
        no_guidance = getattr(gen, "needs_unconditional", None)
        if cfg.cfg_base is None and callable(no_guidance) and not no_guidance(s_base):
            s_base = 1.0  # the model's own "no guidance" (LlamaGen: any cfg <= 1, the conditional logits alone)
        if getattr(gen, "cfg_interval", -1) > -1:  # LlamaGen's: the model's own mix, which ScalingAR does not use
            warnings.warn(f"ScalingAR guides every token with its own schedule: the model's cfg_interval "
                          f"{gen.cfg_interval} (conditional logits alone late in the raster) is not applied",
                          ArscaleWarning, stacklevel=3)
        if cfg.schedule_guidance and cfg.clamp_min > s_base:
            warnings.warn(f"ScalingAR: clamp_min {cfg.clamp_min} is above the base scale {s_base}, so the floor is "
                          f"{s_base}: the schedule moves around the scale asked for", ArscaleWarning, stacklevel=3)
        # a generator's own temperature may be <= 0 (LlamaGen, as upstream: taken as 1e-5, greedy)
        temperature = cfg.temperature if cfg.temperature is not None else max(float(getattr(gen, "temperature", 1.0)),
                                                                                 1e-5)
        top_k = cfg.top_k if cfg.top_k is not None else getattr(gen, "top_k", 0)
        top_p = cfg.top_p if cfg.top_p is not None else getattr(gen, "top_p", 1.0)
        own_sampler = cfg.temperature is None and cfg.top_k is None and cfg.top_p is None and hasattr(gen, "sample")

        before = CostRecord().add(cost)
        with cost.timer("model"):
            traj = gen.start(prompts, n, seed, prompt_offset=prompt_offset)
        # a generator that keeps no count in extra["transformer_flops"] (a plugin's) is billed by its
        # flops_per_token, as `Search` bills the other strategies: the prefill now, then each token fed
        own_count = "transformer_flops" in traj.extra
        billed = 0.0 if own_count else token_forward_flops(gen, traj, 0)
        P = len(prompts)
        profile = ConfidenceProfile(cfg, traj, num_prompts=P, num_tokens=T, s_base=s_base)
        traj.rows["sar_flagged"] = torch.zeros(len(traj), dtype=torch.bool)
        traj.rows["sar_flag_step"] = torch.full((len(traj),), -1, dtype=torch.long)
        traj.rows["sar_candidate"] = torch.arange(len(traj)) % n
        policy = TerminationPolicy(cfg, P, window)
        log = _Telemetry(traj, index_offset, P, T, previews=cfg.record_previews and "tokens" in traj.rows
                         and callable(getattr(gen, "decode_prefix", None)))

        pmi = None  # the last token's pmi, where it was drawn: the host reads it with the next step's profile
        for t in range(T):
            with cost.timer("model"):
                cond, uncond = gen.next_logits(traj)
            with cost.timer("selection"):  # Stage I: the profile; Stage II: this step's guidance per candidate
                step = profile.step(traj, t, cond, uncond, pmi)
                # Stage III before token t is drawn (Algorithm 1 draws first): the decision reads only the profile,
                # so the draw changes nothing, and a terminated candidate spends no draw and no forward on it
                if cfg.terminate and warmup <= t < T - 1:
                    kept = self._terminate(traj, t, step, policy, log)
                    if kept is not None:
                        step = step.keep(kept)
                        cond, uncond = gen.next_logits(traj)  # the survivors' rows (the batch was just cut)
            with cost.timer("model"):
                guidance = step.guidance.to(cond.device)  # one copy to the device for the mix and the generator
                mixed = cfg_mix(cond, uncond, guidance)
                if own_sampler:  # the generator's own filter and streams (LlamaGen's HF-style top-k / top-p), as raw
                    tokens = gen.sample(traj, mixed)
                else:
                    tokens = sample_per_row(mixed, traj.seed_key, t, temperature=temperature, top_k=top_k,
                                            top_p=top_p)
                gen.advance(traj, tokens, guidance=guidance)
                check_step_advanced(gen, traj, t, "advance")
                if not own_count and t + 1 < T:  # feeding token t gave the survivors token t + 1's logits
                    billed += token_forward_flops(gen, traj, t + 1)
            with cost.timer("selection"):
                pmi = sig.token_pmi(step.log_cond, step.log_uncond, tokens)
            cost.generated_tokens += len(traj)
        traj.record("pmi", T - 1, pmi)  # the last token's (the profile recorded the others a step late)
        cost.transformer_flops += float(traj.extra["transformer_flops"] if own_count else billed) + \
            float(traj.extra.get("text_flops", 0.0))
        traj.finish_tree("final")

        with cost.timer("decode"):
            images = gen.finish(traj)
        uncounted = count_decode(cost, gen, len(traj), int(gen.image_size), lambda: gen.finish(traj))
        log.end(range(len(traj)), None, None)
        if log.pruned_tokens:
            uncounted += _attach_previews(gen, log.pruned_tokens, log.traces, cfg.preview_size)
        if cfg.final_pick == "mean":
            final_c = traj.history["C"][:, min(warmup, T - 1):].nanmean(1)  # a warm-up over every token: the last C
        else:
            final_c = traj.history["C"][:, T - 1]
        pixels = to_uint8(images)
        candidates: list[list[Candidate]] = []
        for p in range(P):
            rows = traj.rows_of(p)
            best = int(rows[int(torch.argmax(final_c[rows]))])
            candidates.append([Candidate(index_offset + p, int(traj.node[r]), pixels[r], float(final_c[r]),
                                         chosen=int(r) == best) for r in rows.tolist()])
        per_prompt = log.per_prompt()
        spent = {k: getattr(cost, k) - getattr(before, k) for k in ("transformer_flops", "decode_flops", "decode_count")}
        telemetry = {"prompts": per_prompt, "events": log.events, "threshold": log.thresholds,
                     "cost_per_prompt": _cost_per_prompt(gen, per_prompt, T, spent,
                                                         float(traj.extra.get("text_flops", 0.0))),
                     "warmup_steps": warmup, "recovery_window_steps": window,
                     "variance_window_steps": cfg.variance_steps(T), "num_tokens": T, "s_base": s_base}
        return candidates, telemetry, traj.tree, uncounted, list(traj.prompts)

    def _terminate(self, traj: Any, t: int, step: ProfileStep, policy: TerminationPolicy,
                   log: _Telemetry) -> list[int] | None:
        """Stage III: flag, recover and terminate. Terminated rows leave the batch (and the KV cache) before they
        draw token t: each generated `t` tokens (`ended` = t in its trace and in the tree). Returns the rows kept,
        or None when none was terminated."""
        prompt = traj.prompt_index
        events, doomed = policy.step(t, step.c, step.r, prompt, traj.rows["sar_flagged"], traj.rows["sar_flag_step"])
        for p in prompt.unique().tolist():
            log.thresholds[p][t] = policy.theta[p]
        if self.config.rebound_from == "flag":  # the probation window's rebound is measured from the flag on
            flagged_now = [row for row, kind in events if kind == "flag"]
            traj.rows["sar_c_min"][flagged_now] = step.c[flagged_now]
        log.add_events(events, t, step.c)
        if not doomed:
            return None
        log.end(doomed, t, "prune")
        gone = set(doomed)
        kept = [i for i in range(len(traj)) if i not in gone]
        traj.select(kept, reason="prune")
        return kept


class _Telemetry:
    """What a ScalingAR run reports beside its images: one trace per candidate, the flag / recover / settle /
    terminate events, each prompt's threshold per step, and the tokens of terminated candidates (for their
    previews)."""

    SIGNALS = ("C", "I", "D", "R", "guidance", "s_tok", "B", "K", "pmi", "entropy", "margin")

    def __init__(self, traj: Any, index_offset: int, num_prompts: int, num_tokens: int, previews: bool):
        self.traj, self.index_offset, self.num_prompts, self.previews = traj, index_offset, num_prompts, previews
        self.traces: dict[int, dict[str, Any]] = {}  # node -> trace of a candidate that ended
        self.events: list[dict[str, Any]] = []
        self.thresholds = [[float("nan")] * num_tokens for _ in range(num_prompts)]
        self.pruned_tokens: dict[int, torch.Tensor] = {}  # node -> its tokens when it was terminated

    def add_events(self, events: list[tuple[int, str]], t: int, c: torch.Tensor) -> None:
        traj = self.traj
        for row, kind in events:
            self.events.append({"prompt": self.index_offset + int(traj.prompt_index[row]),
                                "candidate": int(traj.rows["sar_candidate"][row]), "node": int(traj.node[row]),
                                "step": t, "event": kind, "C": float(c[row])})

    def end(self, rows: Sequence[int], ended: int | None, reason: str | None) -> None:
        """Close the traces of `rows`: terminated at step `ended`, or (None) alive at the end."""
        traj = self.traj
        for r in rows:
            node = int(traj.node[r])
            self.traces[node] = {
                "prompt": self.index_offset + int(traj.prompt_index[r]),
                "candidate": int(traj.rows["sar_candidate"][r]), "node": node,
                **{k: traj.history[k][r].tolist() for k in self.SIGNALS}, "ended": ended, "reason": reason}
            if reason == "prune" and self.previews:
                self.pruned_tokens[node] = traj.rows["tokens"][r].clone()

    def per_prompt(self) -> list[list[dict[str, Any]]]:
        out = [[tr for tr in self.traces.values() if tr["prompt"] == self.index_offset + p]
               for p in range(self.num_prompts)]
        for traces in out:
            traces.sort(key=lambda tr: tr["candidate"])
        return out



def _attach_previews(gen: Any, tokens: dict[int, torch.Tensor], traces: dict[int, dict], size: int,
                     chunk: int = 256) -> float:
    """Each terminated candidate's raster prefix into its trace: `tokens` (those it generated) and `preview` (their
    decode, uint8 [size, size, 3]; decoded in batches). Returns the seconds spent: telemetry, not the method's cost."""
    t0 = time.perf_counter()
    nodes = list(tokens)
    for i in range(0, len(nodes), chunk):
        batch = nodes[i:i + chunk]
        images = to_uint8(gen.decode_prefix(torch.stack([tokens[n] for n in batch]), size))
        for node, image in zip(batch, images):
            traces[node]["preview"] = image
            traces[node]["tokens"] = tokens[node][: traces[node]["ended"]].tolist()
    return time.perf_counter() - t0



def _cost_per_prompt(gen: Any, per_prompt: list[list[dict[str, Any]]], num_tokens: int,
                     spent: dict[str, float], text_flops: float = 0.0) -> list[dict[str, float]]:
    """Each prompt's own share of a batch's cost, since its candidates stop at their own steps. Every row of a
    step sits at the same position, so a candidate that generated L tokens (a terminated one: L = `ended`) cost
    the forwards that gave the logits of positions 0..min(L, T-1) (the prefill, then each token fed unless it was
    the final one); only survivors are decoded. The text encoder (`text_flops`, part of the transformer FLOPs
    spent) read each prompt once, so it is split evenly. The shares are scaled to the batch's measured totals, so
    they add up to them exactly."""
    lengths = [[num_tokens if tr["ended"] is None else int(tr["ended"]) for tr in traces] for traces in per_prompt]
    flops_of = getattr(gen, "flops_per_token", None)
    if callable(flops_of):
        cumulative = np.cumsum([float(flops_of(1, pos)) for pos in range(num_tokens)])
        weights = [sum(float(cumulative[min(L, num_tokens - 1)]) for L in ls) for ls in lengths]
    else:  # no per-position count: a token's share
        weights = [float(sum(ls)) for ls in lengths]
    survivors = [float(sum(L == num_tokens for L in ls)) for ls in lengths]

    def share(total: float, w: list[float]) -> list[float]:
        return [total * x / sum(w) if sum(w) else 0.0 for x in w]

    flops = [f + text_flops / len(lengths) for f in share(spent["transformer_flops"] - text_flops, weights)]
    decode_flops = share(spent["decode_flops"], survivors)
    decodes = share(spent["decode_count"], survivors)
    return [{"generated_tokens": float(sum(ls)), "transformer_flops": f, "decode_flops": df, "decode_count": dc}
            for ls, f, df, dc in zip(lengths, flops, decode_flops, decodes)]
