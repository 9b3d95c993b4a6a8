"""The contextual per-learner policy (experiments/contextual.py): the feature layout by hand,
the model's fit against hand-computed values and known coefficients, the Monte Carlo error of
the Thompson probabilities, and the logged propensities against the draws."""

import hashlib
import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from experiments import bandits
from experiments import contextual as ctx

K = 4


def _one_hot(size: int, index: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(size)]


# --- Features --------------------------------------------------------------------------------


def test_learner_features__every_fact__hand_computed_layout():
    facts = {
        "personalization_level": "HIGH",
        "learning_style": "READING",
        "reading_length": "LONG",
        "tone_preference": "FORMAL",
        "software_level": "INTERMEDIATE",
        "hardware_level": "BASIC",
        "skill_ratings": {"loops": 0.2, "recursion": 0.6, "typing": 1.0},
        "weaknesses": ["loops"],
        # premium and age share bucket 4 with opposite signs; a string is name=value's
        "attributes": {"premium": True, "age": 3, "cohort": "b", "nickname": None},
    }
    x = ctx.learner_features(facts)
    assert ctx.FEATURES == 25 == x.size
    assert x[ctx.INTERCEPT] == 1.0
    assert x[ctx.LEVEL].tolist() == _one_hot(3, 2)
    assert x[ctx.STYLE].tolist() == _one_hot(5, 2)
    assert x[ctx.READING_LENGTH] == 1.0
    assert x[ctx.TONE].tolist() == _one_hot(3, 1)
    assert x[ctx.SOFTWARE] == 0.5
    assert x[ctx.HARDWARE] == pytest.approx(1 / 3)
    assert x[ctx.SKILL_MEAN] == pytest.approx(0.6)
    assert x[ctx.WEAKNESSES] == pytest.approx(0.2)
    # bucket 4: −1·1 (premium) + 1·3/(1 + 3) (age); bucket 1: +1 (cohort=b)
    expected = [0.0] * ctx.ATTRIBUTE_BUCKETS
    expected[4], expected[1] = -1.0 + 0.75, 1.0
    assert x[ctx.ATTRIBUTES].tolist() == pytest.approx(expected)


def test_learner_features__nothing_known__intercept_and_preference_defaults():
    """Profiling off (learning_style None), no Preferences (reading MEDIUM, tone CASUAL),
    no profile, no skills, no attributes."""
    x = ctx.learner_features({"personalization_level": "LOW", "learning_style": None})
    expected = np.zeros(ctx.FEATURES)
    expected[ctx.INTERCEPT] = 1.0
    expected[ctx.LEVEL.start] = 1.0
    expected[ctx.READING_LENGTH] = 0.5
    expected[ctx.TONE.start] = 1.0
    assert x.tolist() == expected.tolist()
    # unknown enumeration values count as missing; many weaknesses are capped
    odd = ctx.learner_features({"personalization_level": "NONE", "weaknesses": ["a"] * 9})
    assert odd[ctx.LEVEL].tolist() == [0.0, 0.0, 0.0]
    assert odd[ctx.WEAKNESSES] == 1.0


def test_attribute_slot__sha256_of_the_name__stable_not_pythons_hash():
    digest = hashlib.sha256(b"attribute:plan=pro").digest()
    bucket = int.from_bytes(digest[:8], "big") % ctx.ATTRIBUTE_BUCKETS
    sign = 1.0 if digest[8] % 2 == 0 else -1.0
    assert ctx.attribute_slot("plan=pro") == (bucket, sign) == (7, -1.0)
    assert ctx.attribute_slot("cohort=a") == (0, 1.0)


# --- The model -------------------------------------------------------------------------------


def test_fit_model__intercept_only__hand_computed():
    """k = 4, σ²_w = 0.04 (a fallback prior: no residual pass), two learners with n = 1 and
    4 rewards of mean 0.6 and 0.5, population mean 0.4: w = 1·4/5 = 0.8 and 4·4/8 = 2,
    A = 4 + 2.8 = 6.8, b = 4·0.4 + 0.8·0.6 + 2·0.5 = 3.08, β̂ = 3.08/6.8, Σ = 0.04/6.8."""
    prior = bandits.PopulationPrior(4.0, 0.04, learners=2, estimated=False)
    model = ctx.fit_model(
        np.ones((2, 1)),
        np.array([[1.0], [4.0]]),
        np.array([[0.6], [0.5]]),
        [0.4],
        prior,
        keys=(17,),
    )
    assert model.keys == (17,)
    assert model.coefficients[0, 0] == pytest.approx(3.08 / 6.8)
    assert model.covariance[0, 0, 0] == pytest.approx(0.04 / 6.8)
    assert model.between_variance == pytest.approx(0.01)
    assert model.within_variance == 0.04
    assert model.learners == 2
    assert model.informative


def test_fit_model__synthetic_learners__recovers_known_coefficients_and_spread():
    """3,000 learners with random facts, β known, residual spread τ = 0.05 and noise 0.2;
    every coefficient within four posterior sds of the truth, and the residual τ² near
    0.0025 although §5.5's τ² (around the arm means) includes what the features explain."""
    rng = np.random.default_rng(42)
    learners = 3_000
    facts = [
        {
            "personalization_level": ctx.LEVELS[rng.integers(3)],
            "learning_style": ctx.LEARNING_STYLES[rng.integers(5)],
            "software_level": ctx.SOFTWARE_LEVELS[rng.integers(3)],
            "attributes": {"cohort": "ab"[rng.integers(2)]},
        }
        for _ in range(learners)
    ]
    x = np.vstack([ctx.learner_features(f) for f in facts])
    beta = np.zeros((2, ctx.FEATURES))
    beta[:, ctx.INTERCEPT] = [0.45, 0.40]
    beta[1, ctx.SOFTWARE] = 0.15
    beta[1, ctx.ATTRIBUTES.start + 1] = 0.10  # cohort b
    beta[0, ctx.STYLE.start] = -0.05  # visual learners
    theta = x @ beta.T + rng.normal(0.0, 0.05, (learners, 2))
    n = rng.integers(1, 9, (learners, 2)).astype(float)
    means = rng.normal(theta, 0.2 / np.sqrt(n))
    total = means * n
    total_sq = 0.04 * rng.chisquare(np.maximum(n - 1, 1e-9)) + total**2 / n
    arm = np.broadcast_to(np.arange(2), n.shape).ravel()
    prior = bandits.population_prior(
        n.ravel(), total.ravel(), total_sq.ravel(), fallback=10.0, arm=arm
    )
    model = ctx.fit_model(x, n, means, total.sum(axis=0) / n.sum(axis=0), prior)
    fitted = x @ model.coefficients.T
    truth = x @ beta.T
    sd = np.sqrt(np.einsum("ui,aij,uj->ua", x, model.covariance, x))
    assert (np.abs(fitted - truth) < 4 * sd).all(), np.abs(fitted - truth).max()
    software = (
        model.coefficients[1, ctx.SOFTWARE],
        np.sqrt(model.covariance[1, ctx.SOFTWARE, ctx.SOFTWARE]),
    )
    assert abs(software[0] - 0.15) < 4 * software[1], software
    assert 0.0015 < model.between_variance < 0.0035, model.between_variance
    assert prior.within_variance / prior.prior_strength > 0.0035  # §5.5's, cohorts included


def test_fit_model__undefined_prior__uninformative_but_proper():
    prior = bandits.PopulationPrior(10.0, float("nan"))
    model = ctx.fit_model(
        np.ones((3, ctx.FEATURES)), np.zeros((3, K)), np.zeros((3, K)), np.zeros(K), prior
    )
    assert not model.informative
    assert model.within_variance == ctx.FALLBACK_WITHIN_VARIANCE
    assert model.between_variance == ctx.FALLBACK_WITHIN_VARIANCE
    # no data: the prior itself, σ²_w/λ·I with λ = 1
    assert model.covariance[0].tolist() == (0.25 * np.eye(ctx.FEATURES)).tolist()
    assert np.all(np.linalg.eigvalsh(model.covariance) > 0)


def test_fit_model__rows_that_do_not_match__refused():
    prior = bandits.PopulationPrior(10.0, 0.04)
    with pytest.raises(ValueError, match="one row per learner"):
        ctx.fit_model(np.ones((3, 2)), np.zeros((2, K)), np.zeros((2, K)), np.zeros(K), prior)
    with pytest.raises(ValueError, match="one population mean per arm"):
        ctx.fit_model(np.ones((2, 2)), np.zeros((2, K)), np.zeros((2, K)), np.zeros(3), prior)
    with pytest.raises(ValueError, match="one key per arm"):
        ctx.fit_model(
            np.ones((2, 2)), np.zeros((2, K)), np.zeros((2, K)), np.zeros(K), prior, keys=(1,)
        )


def _model(means: list[float], variance: float = 0.0004) -> ctx.ContextualModel:
    """A model whose every learner's fitted value is `means` (intercepts), each with
    variance `variance`, σ²_w = 0.04 and τ² = 0.0025 (k = 16)."""
    coefficients = np.zeros((len(means), ctx.FEATURES))
    coefficients[:, ctx.INTERCEPT] = means
    covariance = np.zeros((len(means), ctx.FEATURES, ctx.FEATURES))
    covariance[:, ctx.INTERCEPT, ctx.INTERCEPT] = variance
    return ctx.ContextualModel(coefficients, covariance, 0.04, 0.0025)


def test_arm_posteriors__hand_computed_with_and_without_the_deviation_drawn():
    """x = intercept only, fitted 0.5, x'Σx = 0.0004; the learner has n = 4 rewards of mean
    0.7 under arm 0 and none under arm 1 (k = 0.04/0.0025 = 16, s = 4/20 = 0.2):
    without: mean 0.8·0.5 + 0.2·0.7 = 0.54, sd 0.8·0.02; arm 1 0.5 and 0.02.
    with: v0 = 0.0029, 1/v = 1/0.0029 + 4/0.04, m = v·(0.5/0.0029 + 100·0.7)."""
    model = _model([0.5, 0.5])
    x = np.zeros(ctx.FEATURES)
    x[ctx.INTERCEPT] = 1.0
    mean, sd = ctx.arm_posteriors(model, x, np.array([4.0, 0.0]), np.array([0.7, 0.0]))
    assert mean[0].tolist() == pytest.approx([0.54, 0.5])
    assert sd[0].tolist() == pytest.approx([0.016, 0.02])
    mean, sd = ctx.arm_posteriors(
        model, x, np.array([4.0, 0.0]), np.array([0.7, 0.0]), sample_deviation=True
    )
    v = 1.0 / (1.0 / 0.0029 + 100.0)
    assert mean[0].tolist() == pytest.approx([v * (0.5 / 0.0029 + 70.0), 0.5])
    assert sd[0].tolist() == pytest.approx([np.sqrt(v), np.sqrt(0.0029)])


def test_model__pickles_to_a_few_kilobytes():
    model = _model([0.4, 0.5, 0.55, 0.6])
    blob = pickle.dumps(model)
    assert len(blob) < 25_000
    back = pickle.loads(blob)  # noqa: S301 (our own bytes)
    assert back.coefficients.tolist() == model.coefficients.tolist()
    assert back.covariance.tolist() == model.covariance.tolist()


# --- Thompson probabilities and the policy --------------------------------------------------


def _exact_thompson(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """P(arm a is the largest) = ∫ φ_a(t) Π_{b≠a} Φ_b(t) dt, by quadrature."""
    result = []
    for a in range(mean.size):

        def density(t: float, a: int = a) -> float:
            others = [stats.norm.cdf(t, mean[b], sd[b]) for b in range(mean.size) if b != a]
            return float(stats.norm.pdf(t, mean[a], sd[a]) * np.prod(others))

        result.append(integrate.quad(density, -2.0, 3.0, points=list(mean))[0])
    return np.array(result)


def test_thompson_probabilities__4096_draws__standard_error_below_001():
    """0.5/√4096 = 0.0078 bounds every standard error; measured over 300 estimates of the
    same four arms, each arm's sd of the estimate is within 15% of √(p(1 − p)/M), below
    0.01, and the mean estimate is the quadrature's P within four standard errors."""
    assert ctx.monte_carlo_standard_error(ctx.THOMPSON_DRAWS) == pytest.approx(0.0078125)
    assert ctx.monte_carlo_standard_error(ctx.THOMPSON_DRAWS) < 0.01
    assert ctx.monte_carlo_standard_error(2_500) == pytest.approx(0.01)
    mean = np.array([0.50, 0.52, 0.55, 0.56])
    sd = np.array([0.03, 0.04, 0.03, 0.02])
    exact = _exact_thompson(mean, sd)
    assert exact.sum() == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(7)
    estimates = np.vstack([ctx.thompson_probabilities(mean, sd, rng=rng)[0] for _ in range(300)])
    expected_se = np.sqrt(exact * (1 - exact) / ctx.THOMPSON_DRAWS)
    measured_se = estimates.std(axis=0, ddof=1)
    assert (measured_se < 0.01).all(), measured_se
    assert np.allclose(measured_se, expected_se, rtol=0.15), (measured_se, expected_se)
    assert (np.abs(estimates.mean(axis=0) - exact) < 4 * expected_se / np.sqrt(300)).all()


@pytest.mark.parametrize("level", ["LOW", "MEDIUM", "HIGH"])
def test_contextual_policy__propensities__are_the_probabilities_the_actions_were_drawn_with(
    level,
):
    """One learner's state decided 20,000 times (at once, as the simulator decides):
    E[1(a = s)/p] = 1 for every strategy s, within four standard errors. One at a time,
    every propensity is the returned probability of the action, at least ε/K, and the
    probabilities sum to 1."""
    model = _model([0.45, 0.50, 0.52, 0.55], variance=0.001)
    x = np.zeros(ctx.FEATURES)
    x[ctx.INTERCEPT] = 1.0
    n, own = np.array([3.0, 0.0, 2.0, 1.0]), np.array([0.4, 0.0, 0.6, 0.5])
    epsilon = bandits.EPSILON_BY_LEVEL[level]
    rng = np.random.default_rng(11)
    for _ in range(100):
        index, propensity, probabilities = ctx.contextual_policy(
            model, x, n, own, epsilon=epsilon, rng=rng
        )
        assert propensity == probabilities[index]
        assert probabilities.sum() == pytest.approx(1.0)
        assert (probabilities >= epsilon / K - 1e-12).all()
    decisions = 20_000
    actions, propensities, probabilities = ctx.contextual_choose_many(
        model,
        np.tile(x, (decisions, 1)),
        np.tile(n, (decisions, 1)),
        np.tile(own, (decisions, 1)),
        epsilon=epsilon,
        rng=rng,
        draws=256,
    )
    assert (propensities == probabilities[np.arange(decisions), actions]).all()
    for strategy in range(K):
        weights = (actions == strategy) / propensities
        se = weights.std(ddof=1) / np.sqrt(decisions)
        assert abs(weights.mean() - 1.0) < 4 * se, (strategy, weights.mean(), se)


def test_contextual_policy__exploration_budget__spent_uniformly():
    model = _model([0.2, 0.2, 0.2, 0.9])  # arm 3 wins every draw
    x = np.zeros(ctx.FEATURES)
    x[ctx.INTERCEPT] = 1.0
    rng = np.random.default_rng(3)
    _, _, probabilities = ctx.contextual_policy(
        model, x, np.zeros(K), np.zeros(K), epsilon=0.2, rng=rng
    )
    assert probabilities.tolist() == pytest.approx([0.05, 0.05, 0.05, 0.85])
    _, _, everything = ctx.contextual_policy(
        model, x, np.zeros(K), np.zeros(K), epsilon=1.0, rng=rng
    )
    assert everything.tolist() == [0.25] * K
    with pytest.raises(ValueError, match="epsilon"):
        ctx.contextual_policy(model, x, np.zeros(K), np.zeros(K), epsilon=1.5, rng=rng)
    with pytest.raises(ValueError, match="one n_user"):
        ctx.contextual_policy(model, x, np.zeros(3), np.zeros(3), epsilon=0.1, rng=rng)


def test_contextual_policy__same_seed__same_decision():
    model = _model([0.45, 0.50, 0.52, 0.55], variance=0.001)
    x = np.zeros(ctx.FEATURES)
    x[ctx.INTERCEPT] = 1.0
    first, second = (
        ctx.contextual_policy(
            model, x, np.zeros(K), np.zeros(K), epsilon=0.1, rng=np.random.default_rng(5)
        )
        for _ in range(2)
    )
    assert first[:2] == second[:2]
    assert first[2].tolist() == second[2].tolist()


def test_draw_from__zero_probability__never_drawn_even_at_the_top_of_the_range():
    class Top:
        """A generator whose uniforms are as close to 1 as a float gets."""

        def random(self, size: int) -> np.ndarray:
            return np.full(size, np.nextafter(1.0, 0.0))

    probabilities = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.3, 0.3, 0.4]])
    drawn = ctx.draw_from(probabilities, Top())  # type: ignore[arg-type]
    assert drawn.tolist() == [1, 1, 2]
    counts = np.bincount(
        ctx.draw_from(np.tile([[0.2, 0.0, 0.8]], (20_000, 1)), np.random.default_rng(1)),
        minlength=3,
    )
    assert counts[1] == 0
    assert abs(counts[0] / 20_000 - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 20_000)
