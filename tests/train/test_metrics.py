"""Top-k accuracy on hand-made logits, and the running average."""
import numpy as np
import pytest

from tinyresnet.train import AverageMeter, accuracy, topk_correct

# Four samples, six classes; the ranking of each row is written next to it.
LOGITS = np.array([
    [0.1, 5.0, 0.2, 0.3, 0.4, 0.0],   # best: 1, then 4, 3, 2, 0, 5
    [3.0, 2.0, 1.0, 0.0, -1.0, -2.0],  # best: 0, 1, 2, 3, 4, 5
    [0.0, 0.0, 9.0, 8.0, 7.0, 6.0],   # best: 2, 3, 4, 5, then 0/1
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],   # best: 5, 4, 3, 2, 1, 0
], dtype=np.float32)


def test_topk_counts_by_hand():
    labels = np.array([1, 2, 5, 0])
    # sample 0: rank 1; sample 1: rank 3; sample 2: rank 4; sample 3: rank 6
    assert topk_correct(LOGITS, labels, (1, 2, 3, 4, 5, 6)) == [1, 1, 2, 3, 3, 4]


def test_accuracy_in_percent():
    labels = np.array([1, 0, 2, 5])   # every sample right at top-1
    assert accuracy(LOGITS, labels, (1, 5)) == [100.0, 100.0]
    labels = np.array([4, 0, 3, 0])   # ranks 2, 1, 2, 6
    assert accuracy(LOGITS, labels, (1, 2, 5)) == [25.0, 75.0, 75.0]


def test_k_larger_than_classes_is_clipped():
    logits = np.array([[0.0, 1.0, 2.0]])
    assert topk_correct(logits, np.array([0]), (1, 5)) == [0, 1]


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="topk_correct: expected labels of shape"):
        topk_correct(LOGITS, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"topk_correct: expected logits of shape \(N, K\)"):
        topk_correct(LOGITS[0], np.array([0]))


def test_average_meter_weights_by_count():
    meter = AverageMeter("loss")
    meter.update(1.0, n=3)
    meter.update(3.0, n=1)
    assert meter.avg == pytest.approx(1.5)
    assert meter.val == 3.0
    restored = AverageMeter()
    restored.load_state_dict(meter.state_dict())
    restored.update(0.0, n=4)
    assert restored.avg == pytest.approx(6.0 / 8)
    meter.reset()
    assert meter.avg == 0.0 and meter.count == 0
