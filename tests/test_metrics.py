import numpy as np
import pytest

from chm.metrics import class_iou, confusion, mean_iou, pixel_error


def test_pixel_error_single_array():
    pred = np.array([[1, 0], [0, 0]])
    true = np.array([[1, 1], [0, 1]])
    assert pixel_error(pred, true) == 0.5
    assert pixel_error(true, true) == 0.0


def test_pixel_error_is_pooled_not_averaged():
    # 1 wrong of 4 and 0 wrong of 12: pooled 1/16, the per-image mean would be 1/8.
    preds = [np.array([[1, 1], [1, 1]]), np.zeros((3, 4), np.uint8)]
    trues = [np.array([[1, 1], [1, 0]]), np.zeros((3, 4), np.uint8)]
    assert pixel_error(preds, trues) == 1 / 16


def test_pixel_error_bool_against_uint8():
    pred = np.array([True, False, True])
    true = np.array([1, 0, 0], dtype=np.uint8)
    assert pixel_error(pred, true) == pytest.approx(1 / 3)


def test_pixel_error_shape_mismatch_names_index():
    with pytest.raises(ValueError, match="image 1"):
        pixel_error([np.zeros((2, 2)), np.zeros((2, 3))], [np.zeros((2, 2)), np.zeros((3, 2))])


def test_pixel_error_bad_lengths_and_empty():
    with pytest.raises(ValueError, match="2 pred_masks"):
        pixel_error([np.zeros(2), np.zeros(2)], [np.zeros(2)])
    with pytest.raises(ValueError):
        pixel_error([], [])
    with pytest.raises(ValueError, match="no pixels"):
        pixel_error(np.zeros((0, 3)), np.zeros((0, 3)))


def test_confusion_known_answer():
    true = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    cm = confusion(pred, true, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert cm.sum() == 6
    assert 1 - np.trace(cm) / cm.sum() == pytest.approx(pixel_error(pred, true))


def test_confusion_pools_lists():
    cm = confusion([np.array([1, 1]), np.array([0])], [np.array([1, 0]), np.array([0])], 2)
    np.testing.assert_array_equal(cm, [[1, 1], [0, 1]])


def test_confusion_rejects_out_of_range():
    with pytest.raises(ValueError, match="0..1"):
        confusion(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError):
        confusion(np.array([0.5]), np.array([0]), 2)
    with pytest.raises(ValueError):
        confusion(np.array([0]), np.array([0]), 0)


def test_class_iou_known_answer_pooled_over_images():
    pred = [np.array([[0, 1], [1, 2]]), np.array([[2, 2, 0]])]
    true = [np.array([[0, 1], [2, 2]]), np.array([[2, 0, 0]])]
    # class 0: TP 2 (img0 (0,0), img1 last), FP 0, FN 1 (img1 middle) -> 2/3
    # class 1: TP 1, FP 1 (img0 (1,0) is 2) -> 1/2; class 2: TP 2, FP 1, FN 1 -> 2/4
    np.testing.assert_allclose(class_iou(pred, true, 3), [2 / 3, 1 / 2, 1 / 2])
    assert mean_iou(pred, true, 3) == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)
    # pooled, not a mean of per-image IoUs: image 1 alone has class-0 IoU 1/2
    assert class_iou(pred[1], true[1], 3)[0] == pytest.approx(1 / 2)


def test_class_iou_absent_classes_and_ignore():
    true = np.array([[0, 0, -1, 1]])
    pred = np.array([[0, 1, 3, 1]])
    iou = class_iou(pred, true, 4, ignore=-1)  # the ignored pixel's prediction (3) does not count
    np.testing.assert_allclose(iou[:2], [1 / 2, 1 / 2])
    assert np.isnan(iou[2]) and np.isnan(iou[3])  # neither true nor predicted: undefined
    assert mean_iou(pred, true, 4, ignore=-1) == pytest.approx(0.5)
    assert class_iou(np.array([1, 1]), np.array([0, 0]), 2).tolist() == [0.0, 0.0]  # predicted, absent: 0
    fg = class_iou(np.array([True, False]), np.array([1, 1]), 2)[1]  # bool foreground masks
    assert fg == pytest.approx(0.5)
    assert np.isnan(mean_iou(np.array([-1]), np.array([-1]), 2, ignore=-1))
    with pytest.raises(ValueError):
        class_iou(pred, true, 4)  # -1 is no class without ignore
