"""The learning-rate schedule shared by pretraining, SFT and GRPO, against hand-worked values; the shuffled batches of SFT and reward models."""

import math

import pytest

from r1lab.runs import warmup_then_decay


def test_warm_up_rises_linearly_to_the_peak():
    assert [warmup_then_decay(s, 100, warmup_steps=4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


def test_cosine_falls_from_the_peak_to_the_floor():
    # W = 10, total 110: step 10 starts the decay, step 60 is half way, step 110 and later the floor
    assert warmup_then_decay(10, 110, 10) == 1.0
    assert warmup_then_decay(60, 110, 10) == pytest.approx(0.5)
    assert warmup_then_decay(60, 110, 10, min_ratio=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert warmup_then_decay(35, 110, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert warmup_then_decay(500, 110, 10, min_ratio=0.1) == pytest.approx(0.1)


def test_linear_and_constant_shapes_and_a_clear_error_for_others():
    assert warmup_then_decay(5, 10, shape="linear") == pytest.approx(0.5)
    assert warmup_then_decay(5, 10, shape="constant") == 1.0
    with pytest.raises(ValueError, match="unknown schedule shape 'step'"):
        warmup_then_decay(5, 10, shape="step")


def test_shuffled_batches_cover_every_row_once_per_pass_and_resume_exactly():
    from r1lab.runs import ShuffledBatches

    rows = list(range(10))
    batches = ShuffledBatches(rows, batch_size=3, seed=7)
    first_pass = [row for batch in batches.take(3) for row in batch]
    assert len(first_pass) == 9 and len(set(first_pass)) == 9  # no row twice; one waits for the next pass
    saved = batches.state_dict()
    straight = batches.take(5)
    resumed = ShuffledBatches(rows, batch_size=3, seed=0)  # another seed: the state decides
    resumed.load_state_dict(saved)
    assert resumed.take(5) == straight
