"""bench/save_cost.py's arithmetic on made-up timings: steps of 0.1 s, a save of 0.2 s every 10 steps, the step
after each save 0.05 s slower; an epoch boundary's interval is not a step."""

from __future__ import annotations

import pytest

from bench.save_cost import analyse


def _steps(epochs: int = 2, per_epoch: int = 50, every: int = 10) -> list[dict]:
    steps, t, pending = [], 0.0, 0.0
    for epoch in range(1, epochs + 1):
        t += 5.0  # validation, the epoch's save: not a step
        for batch in range(per_epoch):
            t += 0.1 + pending
            save = 0.2 if (batch + 1) % every == 0 and batch + 1 < per_epoch else 0.0
            steps.append({"epoch": epoch, "batch": batch, "t": t, "save_s": save, "hook_s": 0.0})
            t += save
            pending = 0.05 if save else 0.0
    return steps


def test_one_save_in_steps_and_the_overhead_per_every():
    figures = analyse(_steps())
    assert figures["step_s"]["median"] == pytest.approx(0.1)
    assert figures["step_after_save_s"]["median"] == pytest.approx(0.15)
    assert figures["save_in_steps"]["median"] == pytest.approx(2.0)
    assert figures["save_with_next_step_in_steps"]["median"] == pytest.approx(2.5)
    assert figures["overhead_by_every"]["100"]["save_only_percent"]["median"] == pytest.approx(2.0)
    assert figures["overhead_by_every"]["50"]["with_next_step_percent"]["median"] == pytest.approx(5.0)
    assert figures["every_for_2_percent"] == pytest.approx(125.0)
    assert figures["first_save"]["save_in_steps"] == pytest.approx(2.0)
    assert figures["save_s"]["runs"] == 2 * 4 - 1  # 4 saves an epoch (not at its last step), the first apart
