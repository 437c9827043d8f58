"""TRPO's two numerical tools: conjugate gradient and a backtracking line search.

TRPO maximises the surrogate g^T s subject to 0.5 s^T F s <= delta, with F the Fisher matrix (the
Hessian of the KL). `conjugate_gradient` solves F s = g using only Fisher-vector products; the
full step is then sqrt(2 delta / s^T F s) * s, and `backtracking_line_search` shrinks it until
the true KL bound holds and the surrogate really improves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Solve A x = b for a symmetric positive definite A, given only x -> A x.

        x_0 = 0, r_0 = p_0 = b
        alpha_k = r_k.r_k / p_k.A p_k;  x_{k+1} = x_k + alpha_k p_k;  r_{k+1} = r_k - alpha_k A p_k
        p_{k+1} = r_{k+1} + (r_{k+1}.r_{k+1} / r_k.r_k) p_k

    Stops after `iterations` matrix-vector products or once r.r < residual_tol. In exact
    arithmetic it is exact after n iterations for an n x n A; TRPO uses ~10, enough for a good
    natural-gradient direction. b: (n,) (any shape works: dot products are over all elements);
    matvec maps that shape to itself. Returns x, b's shape.
    """
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = torch.sum(residual * residual)
    for _ in range(iterations):
        if residual_sq < residual_tol:
            break
        a_direction = matvec(direction)
        alpha = residual_sq / torch.sum(direction * a_direction)
        x = x + alpha * direction
        residual = residual - alpha * a_direction
        new_residual_sq = torch.sum(residual * residual)
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x


class LineSearchResult(NamedTuple):
    x: torch.Tensor  # the accepted point, or the starting x when nothing was accepted
    accepted: bool
    step_fraction: float  # shrink^k of the accepted step; 0.0 when nothing was accepted
    improvement: float  # of the returned x; 0.0 when nothing was accepted
    constraint: float  # of the returned x; 0.0 when nothing was accepted


def backtracking_line_search(
    evaluate: Callable[[torch.Tensor], tuple[float, float]],
    x: torch.Tensor,
    full_step: torch.Tensor,
    max_constraint: float,
    *,
    expected_improvement: float | None = None,
    max_backtracks: int = 10,
    shrink: float = 0.5,
    accept_ratio: float = 0.1,
) -> LineSearchResult:
    """Shrink a proposed step until it satisfies the constraint and truly improves.

        try x_k = x + shrink^k * full_step,  k = 0 .. max_backtracks - 1
        accept the first with  constraint(x_k) <= max_constraint  and  improvement(x_k) > 0
        and, when expected_improvement is given,
            improvement(x_k) >= accept_ratio * shrink^k * expected_improvement

    evaluate(x_new) -> (improvement, constraint): for TRPO the surrogate's gain over x and the
    mean KL(pi_old || pi_new); call it under torch.no_grad(). expected_improvement is the
    linear prediction g . full_step; the ratio test, written as a product rather than the
    quotient improvement / (shrink^k * expected), rejects steps that gain far less than the
    linear model promised. A NaN improvement or constraint is never accepted. x, full_step:
    (n,). Returns LineSearchResult(x, accepted, step_fraction, improvement, constraint); when
    nothing is accepted it returns the original x with accepted=False.
    """
    for k in range(max_backtracks):
        fraction = shrink**k
        candidate = x + fraction * full_step
        improvement, constraint = (float(v) for v in evaluate(candidate))
        acceptable = constraint <= max_constraint and improvement > 0
        if acceptable and expected_improvement is not None:
            acceptable = improvement >= accept_ratio * fraction * float(expected_improvement)
        if acceptable:
            return LineSearchResult(candidate, True, fraction, improvement, constraint)
    return LineSearchResult(x, False, 0.0, 0.0, 0.0)
