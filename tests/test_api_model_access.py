"""A plugin that is not a built-in (it is defined here, registered in-process) samples completions
and reads hidden states through the public API only, inside a real audit."""

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


class Plugin:
    @api.hookimpl
    def register_dimensions(self, register):
        register(SampledGeometry)
        register(SampledOverrefusal)


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
