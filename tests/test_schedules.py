"""How many epochs each schedule's stages train."""

from __future__ import annotations

from cl_bench.schedules import Stage

EPOCHS = {"seg": 40, "det": 60, "cls": 20}


def test_a_task_stage_trains_its_own_epochs():
    assert [Stage(None, task, []).epochs(EPOCHS.get) for task in EPOCHS] == [40, 60, 20]


def test_the_joint_stage_trains_the_mean_of_its_tasks_epochs():
    # 40 epochs over the union of three equal sets: as many image passes as 40 + 60 + 20 one after the other
    assert Stage(None, "seg+det+cls", [], tasks=("seg", "det", "cls")).epochs(EPOCHS.get) == 40
    assert Stage(None, "seg+det", [], tasks=("seg", "det")).epochs({"seg": 1, "det": 2}.get) == 2  # 1.5 rounds to even
    assert Stage(None, "seg+cls", [], tasks=("seg", "cls")).epochs({"seg": 1, "cls": 1}.get) == 1
