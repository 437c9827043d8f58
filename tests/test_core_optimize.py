"""TRPO's solver and line search: conjugate gradient against a dense solve, line search by hand."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from r1lab.core import backtracking_line_search, conjugate_gradient

FAST = settings(max_examples=30, deadline=None)


def random_spd(size, seed):
    """A well-conditioned random symmetric positive definite matrix: M M^T + size * I."""
    generator = torch.Generator().manual_seed(seed)
    m = torch.randn(size, size, generator=generator, dtype=torch.float64)
    return m @ m.T + size * torch.eye(size, dtype=torch.float64), generator


# ---------------------------------------------------------------- conjugate gradient


def test_conjugate_gradient_hand_worked_2x2():
    # A = [[4, 1], [1, 3]], b = [1, 2]: x = A^-1 b = [1/11, 7/11]; CG is exact in 2 steps
    a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, torch.tensor([1.0, 2.0], dtype=torch.float64), iterations=2)
    torch.testing.assert_close(x, torch.tensor([1 / 11, 7 / 11], dtype=torch.float64))


@FAST
@given(st.integers(1, 20), st.integers(0, 10_000))
def test_conjugate_gradient_matches_dense_solve_on_random_spd(size, seed):
    a, generator = random_spd(size, seed)
    b = torch.randn(size, generator=generator, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=size, residual_tol=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-7, atol=1e-9)


def test_conjugate_gradient_with_few_iterations_still_descends():
    # TRPO runs ~10 iterations on a much larger system: the residual must still shrink
    a, generator = random_spd(50, seed=3)
    b = torch.randn(50, generator=generator, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=10)
    assert torch.linalg.norm(b - a @ x) < 0.5 * torch.linalg.norm(b)


def test_conjugate_gradient_stops_once_the_residual_is_small():
    calls = []

    def identity(v):
        calls.append(v)
        return v

    b = torch.tensor([3.0, -4.0], dtype=torch.float64)
    torch.testing.assert_close(conjugate_gradient(identity, b, iterations=10), b)
    assert len(calls) == 1  # A = I is solved in one step, and the loop notices


def test_conjugate_gradient_of_zero_right_hand_side_is_zero_without_products():
    def no_product_needed(v):
        raise AssertionError("b = 0 is solved by x = 0 before any product")

    x = conjugate_gradient(no_product_needed, torch.zeros(3))
    assert x.tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------- backtracking line search


def quadratic_problem(minimum=3.0):
    """f(x) = -(x - minimum)^2 to maximise from x = 0; constraint = squared step length."""
    start = torch.zeros(1, dtype=torch.float64)
    tried = []

    def evaluate(x_new):
        tried.append(x_new.item())
        improvement = -((x_new - minimum) ** 2).item() + minimum**2
        return improvement, ((x_new - start) ** 2).item()

    return start, evaluate, tried


def test_line_search_shrinks_until_the_constraint_holds():
    # full step 4: constraint 16 > 2; 2: 4 > 2; 1: 1 <= 2 and f improves by 9 - 4 = 5 -> accept k = 2
    start, evaluate, tried = quadratic_problem()
    result = backtracking_line_search(evaluate, start, torch.tensor([4.0], dtype=torch.float64), 2.0)
    assert tried == [4.0, 2.0, 1.0]
    assert result.accepted and result.step_fraction == 0.25
    assert result.x.item() == 1.0 and result.improvement == 5.0 and result.constraint == 1.0


def test_line_search_rejects_steps_that_do_not_improve():
    # minimum at 3, full step 8: f(8) = -25 < f(0) = -9 (no improvement); 4: improves by 8 -> accept
    start, evaluate, tried = quadratic_problem()
    result = backtracking_line_search(evaluate, start, torch.tensor([8.0], dtype=torch.float64), 100.0)
    assert tried == [8.0, 4.0] and result.step_fraction == 0.5 and result.improvement == 8.0


def test_line_search_ratio_test_rejects_far_less_than_expected():
    # expected improvement 100 at the full step 1: f gains 5 (ratio 0.05 < 0.1, rejected),
    # then at 0.5 gains 2.75 vs 0.1 * 0.5 * 100 = 5 (rejected), at 0.25 gains 1.4375 vs 2.5 ...
    start, evaluate, _ = quadratic_problem()
    result = backtracking_line_search(evaluate, start, torch.tensor([1.0], dtype=torch.float64), 10.0,
                                      expected_improvement=100.0, max_backtracks=5)
    assert not result.accepted
    # with the honest linear prediction g . step = 6, the full step passes (5 / 6 >= 0.1)
    result = backtracking_line_search(evaluate, start, torch.tensor([1.0], dtype=torch.float64), 10.0,
                                      expected_improvement=6.0)
    assert result.accepted and result.step_fraction == 1.0


def test_line_search_ratio_test_scales_the_expectation_with_the_step():
    # full step 4 breaks the constraint (16 > 5); half step x = 2 gains 9 - 1 = 8, and is judged
    # against the expectation shrunk with it: 8 >= 0.1 * 0.5 * 120 = 6 (unshrunk, 12, would reject)
    start, evaluate, _ = quadratic_problem()
    result = backtracking_line_search(evaluate, start, torch.tensor([4.0], dtype=torch.float64), 5.0,
                                      expected_improvement=120.0)
    assert result.accepted and result.step_fraction == 0.5 and result.improvement == 8.0


def test_line_search_returns_the_original_point_when_nothing_is_accepted():
    start, evaluate, tried = quadratic_problem()
    result = backtracking_line_search(evaluate, start, torch.tensor([4.0], dtype=torch.float64), 1e-9,
                                      max_backtracks=3)
    assert tried == [4.0, 2.0, 1.0]
    assert not result.accepted and result.x is start
    assert (result.step_fraction, result.improvement, result.constraint) == (0.0, 0.0, 0.0)


def test_line_search_never_accepts_nan():
    result = backtracking_line_search(lambda x: (math.nan, 0.0), torch.zeros(2), torch.ones(2), 1.0)
    assert not result.accepted
    result = backtracking_line_search(lambda x: (1.0, math.nan), torch.zeros(2), torch.ones(2), 1.0)
    assert not result.accepted


def test_trpo_step_on_a_quadratic_kl_lands_on_the_trust_region_boundary():
    # maximise g.s subject to 0.5 s^T F s <= delta: the CG direction scaled to the boundary
    f_matrix, generator = random_spd(6, seed=11)
    g = torch.randn(6, generator=generator, dtype=torch.float64)
    delta = 0.01
    direction = conjugate_gradient(lambda v: f_matrix @ v, g, iterations=6, residual_tol=1e-20)
    full_step = math.sqrt(2 * delta / (direction @ f_matrix @ direction).item()) * direction
    start = torch.zeros(6, dtype=torch.float64)
    result = backtracking_line_search(
        lambda x: ((g @ x).item(), 0.5 * (x @ f_matrix @ x).item()), start, full_step, delta * 1.0000001,
        expected_improvement=(g @ full_step).item())
    assert result.accepted and result.step_fraction == 1.0
    assert result.constraint == pytest.approx(delta, rel=1e-6)
    # the natural gradient step beats any other step of the same KL, e.g. the scaled plain gradient
    plain = math.sqrt(2 * delta / (g @ f_matrix @ g).item()) * g
    assert result.improvement >= (g @ plain).item()
