"""A plugin that is not a built-in (it is defined here, registered in-process) samples completions
and reads hidden states through the public API only, inside a real audit."""

from typing import ClassVar

import numpy as np
import pytest

from rho_audit import api
from rho_audit.audit.runner import AuditConfig, run_audit
from rho_audit.model.language_model import LanguageModel
from rho_audit.plugins import load_host

SAMPLING = api.Sampling(temperature=1.0, top_p=0.95, n=3)  # seed None: the run's


class SampledGeometry(api.Dimension):
    """Samples three replies per prompt and reads the prompts' states at the middle layer: the
    share of prompts whose replies all differ, and each prompt's cosine to the prompts' centroid."""

    name = "sampled-geometry"
    description = "Sampled replies and prompt geometry (a test plugin)."
    probe_set = "overrefusal"
    probe_kind = "generation"
    metric = "answer_rate"
    runs_by_default = False

    def evaluate(self, probes: api.ProbeSet, ctx: api.AuditContext) -> api.Evaluation:
        prompts = [p.prompt for p in probes]
        replies = ctx.sample(prompts, 6, SAMPLING)
        states = ctx.hidden_states(prompts, "middle", "last")
        reply_states = ctx.hidden_states(
            [api.ScoreRequest(p, r[0]) for p, r in zip(prompts, replies, strict=True)], -1, "mean"
        )
        centroid = states.mean(axis=0)
        cosines = states @ centroid / (np.linalg.norm(states, axis=1) * np.linalg.norm(centroid))
        records = tuple(
            api.ProbeRecord(
                p.id,
                p.split,
                p.category,
                values={"cosine": float(c), "reply_norm": float(np.linalg.norm(s))},
                correct=len(set(r)) == len(r),
                output="\n".join(r),
            )
            for p, r, c, s in zip(probes, replies, cosines, reply_states, strict=True)
        )
        distinct = sum(bool(r.correct) for r in records) / len(records)
        return api.Evaluation(
            "answer_rate",
            "share of prompts whose sampled replies all differ",
            distinct,
            None,
            None,
            len(records),
            records,
            f"{SAMPLING.describe()}, seed {ctx.seed}; states at the middle layer",
        )


class SampledOverrefusal(api.GenerationDimension):
    """The built-in kind, each reply sampled instead of greedy."""

    name = "sampled-overrefusal"
    probe_set = "overrefusal"
    max_tokens = 8
    sampling = api.Sampling(temperature=1.0)
    runs_by_default = False


PERSONAS = (api.Persona("pirate", "You are a pirate captain."), api.Persona("nurse", "You are a nurse."))


class PersonaCentroids(api.Dimension):
    """Each persona's centroid (mean last-prompt-token state at the middle layer) and first
    sampled reply, all in one run; the no-persona anchor too."""

    name = "persona-centroids"
    probe_set = "overrefusal"
    probe_kind = "generation"
    metric = "answer_rate"
    runs_by_default = False
    seen: ClassVar[dict] = {}

    def evaluate(self, probes: api.ProbeSet, ctx: api.AuditContext) -> api.Evaluation:
        prompts = [p.prompt for p in probes]
        records = []
        for persona in (None, *PERSONAS):
            with ctx.using_persona(persona):
                assert ctx.persona is persona
                centroid = ctx.hidden_states(prompts, "middle", "last").mean(axis=0)
                reply = ctx.sample(prompts[:1], 6, api.Sampling(temperature=1.0, n=1))[0][0]
            name = persona.name if persona else "none"
            type(self).seen[name] = centroid
            records.append(
                api.ProbeRecord(name, "all", values={"norm": float(np.linalg.norm(centroid))}, output=reply)
            )
        type(self).seen["after"] = (ctx.persona, ctx.model.system_prompt)
        type(self).seen["prompts"] = prompts
        centroids = [self.seen[r.probe_id] for r in records]
        distinct = [not np.allclose(a, b) for i, a in enumerate(centroids) for b in centroids[i + 1 :]]
        return api.Evaluation(
            "answer_rate",
            "share of persona pairs with distinct centroids",
            float(np.mean(distinct)),
            None,
            None,
            len(records),
            tuple(records),
        )


class Plugin:
    @api.hookimpl
    def register_dimensions(self, register):
        register(SampledGeometry)
        register(SampledOverrefusal)
        register(PersonaCentroids)


@pytest.fixture(scope="module")
def audits(tiny_model_path, tmp_path_factory):
    """The plugin's evaluation in a run with seed 0, again with seed 0, and with seed 1."""
    store = tmp_path_factory.mktemp("runs") / "runs.sqlite"

    def audit(seed):
        config = AuditConfig(
            model=str(tiny_model_path), dimensions=("sampled-geometry",), limit=4, seed=seed, store=store
        )
        [result] = run_audit(config, load_host([Plugin()])).results
        assert result.error is None, result.error
        return result.evaluation

    return audit(0), audit(0), audit(1)


def test_a_test_module_plugin_samples_and_reads_states_through_the_api(audits, tiny_model_path):
    first, again, other_seed = audits
    assert first.n == 4 and first.score == 1.0  # three different replies to every prompt
    assert [r.output for r in again.records] == [r.output for r in first.records]
    assert [r.output for r in other_seed.records] != [r.output for r in first.records]
    # the run's seed keyed the draws: a model asked directly with that seed gives the same replies
    lm = LanguageModel.load(tiny_model_path, "tiny")
    by_id = {p.id: p.prompt for p in api.load_probe_set(load_host([]).probe_sets["overrefusal"].obj)}
    texts = [by_id[r.probe_id] for r in first.records]
    direct = lm.sample(texts, 6, api.Sampling(temperature=1.0, top_p=0.95, n=3, seed=0))
    assert ["\n".join(r) for r in direct] == [r.output for r in first.records]
    states = lm.hidden_states(texts, "middle", "last")
    centroid = states.mean(axis=0)
    cosines = states @ centroid / (np.linalg.norm(states, axis=1) * np.linalg.norm(centroid))
    np.testing.assert_allclose([r.values["cosine"] for r in first.records], cosines, atol=1e-5)


def test_a_generation_dimension_can_sample_its_replies(tiny_model_path, tmp_path):
    config = AuditConfig(
        model=str(tiny_model_path),
        dimensions=("sampled-overrefusal",),
        limit=4,
        seed=3,
        store=tmp_path / "runs.sqlite",
    )
    [result] = run_audit(config, load_host([Plugin()])).results
    assert result.error is None, result.error
    evaluation = result.evaluation
    assert evaluation.scoring.startswith("sampled (temperature 1, 1 per prompt, seed 3) generation, 8 tokens")
    lm = LanguageModel.load(tiny_model_path, "tiny")
    by_id = {p.id: p.prompt for p in api.load_probe_set(load_host([]).probe_sets["overrefusal"].obj)}
    texts = [by_id[r.probe_id] for r in evaluation.records]
    assert [r.output for r in evaluation.records] == lm.generate(texts, 8, sampling=api.Sampling(1.0, seed=3))
    assert [r.output for r in evaluation.records] != lm.generate(texts, 8)


def test_a_dimension_compares_personas_within_one_run(tiny_model_path, tmp_path):
    config = AuditConfig(
        model=str(tiny_model_path), dimensions=("persona-centroids",), limit=3, store=tmp_path / "r.sqlite"
    )
    [result] = run_audit(config, load_host([Plugin()])).results
    assert result.error is None, result.error
    assert result.evaluation.score == 1.0  # every persona's centroid differs from the others'
    seen = PersonaCentroids.seen
    assert seen["after"] == (None, None)  # the run's (no) persona again after each block
    assert not np.allclose(seen["pirate"], seen["none"]) and not np.allclose(seen["pirate"], seen["nurse"])
    lm = LanguageModel.load(tiny_model_path, "tiny")
    prompts = seen["prompts"]
    lm.system_prompt = PERSONAS[0].system_prompt
    np.testing.assert_allclose(
        seen["pirate"], lm.hidden_states(prompts, "middle", "last").mean(axis=0), atol=1e-5
    )
