"""A classifier's results as functions of its scores: confusion matrices and the most
confident right and wrong answers per class, checked against the grader's own computation.

The student's function runs in the kernel on the grader's inputs (numpy arrays; where the
call raises, the same inputs again as torch tensors, since a function written for the
tensors of its notebook is right too) and its result comes back as numbers; the verdict
is made here. A matrix the notebook computed from its own model (``cm_val``) is compared
with the grader's recomputation from that model's predictions, up to a few predictions
that arithmetic on another batch size may flip.

Forms a careful marker accepts: a confusion matrix of counts with rows true and columns
predicted, or its transpose, or either normalised over the true classes; top-k lists as a
list of lists or a (classes, k) array, of indices in any integer type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checking import CheckFailed, as_array, describe_value
from ..errors import StudentRaised

if TYPE_CHECKING:
    from ..grading.channel import KernelChannel

CALL_PROBE = '''
def _subject():
    return __FUNCTION__


def probe(args, kwargs):
    import torch
    function = _subject()
    try:
        return function(*args, **kwargs)
    except Exception:
        tensors = [torch.as_tensor(a) if hasattr(a, "shape") else a for a in args]
        try:
            return function(*tensors, **kwargs)
        except Exception:
            pass
        raise
'''


def call(nb: KernelChannel, function: str, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` in the kernel, with numpy arrays, or else torch tensors."""
    if not function.isidentifier():
        raise ValueError(f"{function!r} is not a name")
    return nb.probe(CALL_PROBE.replace("__FUNCTION__", function), list(args), kwargs)


# Confusion matrices


def confusion(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts, rows the true class and columns the predicted one."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def _normalised(counts: np.ndarray) -> np.ndarray:
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


@dataclass(frozen=True)
class Form:
    """How a matrix was written: ``transposed`` (rows predicted), ``normalised`` (rates)."""

    transposed: bool
    normalised: bool

    def note(self) -> str:
        words = [w for w, on in (("rows predicted, columns true", self.transposed),
                                 ("normalised over the true classes", self.normalised)) if on]
        return f"written {' and '.join(words)}: accepted" if words else ""


def matrix_form(got: Any, counts: np.ndarray, *, what: str, slack: int = 0) -> Form:
    """The form in which ``got`` equals ``counts`` (rows true), up to ``slack`` samples
    counted in another cell; fail when it equals it in none."""
    classes = counts.shape[0]
    matrix = as_array(got, what, shape=(classes, classes)).astype(np.float64)
    rows = np.maximum(counts.sum(axis=1), 1)
    for transposed in (False, True):
        seen = matrix.T if transposed else matrix
        if np.abs(seen - counts).sum() / 2 <= slack + 1e-9:
            return Form(transposed, False)
        rates = np.abs(seen - _normalised(counts))
        if np.all(rates <= (slack / rows)[:, None] + 1e-6) and np.allclose(seen.sum(axis=1)[counts.sum(axis=1) > 0], 1,
                                                                             atol=1e-4):
            return Form(transposed, True)
    worst = np.unravel_index(np.argmax(np.abs(matrix - counts)), counts.shape)
    raise CheckFailed(f"{what} is not the confusion matrix of these labels and predictions (entry [i, j]: the "
                      f"samples of true class i predicted as class j, counted; its transpose or rates over the "
                      f"true classes are accepted too); entry {tuple(int(i) for i in worst)} is "
                      f"{matrix[worst]:g}, the grader counts {counts[worst]}")


def confusion_inputs(seed: int, classes: int = 10, count: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions whose confusion matrix is far from symmetric, with an empty
    row and an empty column, so a transpose or a normaliser over the wrong axis shows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes - 1, count)  # the last class has no sample
    predictions = np.where(rng.random(count) < 0.6, labels, (labels + 1 + rng.integers(0, 2, count)) % classes)
    predictions = np.where(predictions == 0, 1, predictions)  # nothing is predicted as class 0
    return labels, predictions


def expect_confusion_function(nb: KernelChannel, function: str, *, classes: int = 10, seed: int = 4179) -> Form:
    """Fail unless ``function(labels, predictions, num_classes)`` computes the confusion
    matrix of the grader's inputs in an accepted form; the form it used is returned. A
    function of two arguments (``sklearn.metrics.confusion_matrix``, which students import
    under that very name) is called with the labels and predictions, and the classes as
    sklearn's ``labels=`` (one class may be missing from the grader's inputs)."""
    labels, predictions = confusion_inputs(seed, classes)
    try:
        got = call(nb, function, labels, predictions, classes)
    except StudentRaised as error:
        if error.ename != "TypeError":
            raise
        try:
            got = call(nb, function, labels, predictions, labels=list(range(classes)))
        except StudentRaised:
            raise error from None
    return matrix_form(got, confusion(labels, predictions, classes),
                       what=f"{function}(labels, predictions, {classes}) on the grader's {len(labels)} samples")


# The most confident right and wrong answers per class


def top_k(probs: np.ndarray, labels: np.ndarray, k: int, *, correct: bool, by: str = "true") -> list[list[int]]:
    """Per class (the true class, or with ``by="predicted"`` the predicted one), the indices of
    the ``k`` samples classified correctly (or wrongly) with the highest softmax score of the
    class predicted, highest first."""
    predicted, score = probs.argmax(axis=1), probs.max(axis=1)
    group = labels if by == "true" else predicted
    right = predicted == labels
    found = []
    for c in range(probs.shape[1]):
        chosen = np.flatnonzero((group == c) & (right if correct else ~right))
        found.append(chosen[np.argsort(-score[chosen], kind="stable")][:k].tolist())
    return found


def top_k_inputs(seed: int, classes: int = 10, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Softmax scores and labels without ties, with more than ``k`` right and ``k`` wrong
    answers in every true class and every predicted class, in shuffled order."""
    rng = np.random.default_rng(seed)
    labels, predicted = [], []
    for c in range(classes):
        for j in range(2 * k + 4):
            labels.append(c)
            predicted.append(c if j < k + 2 else (c + 1 + (j - k - 2) % (classes - 1)) % classes)
    order = rng.permutation(len(labels))
    labels_array, predicted_array = np.array(labels)[order], np.array(predicted)[order]
    logits = rng.normal(0, 1, (len(labels_array), classes))
    rows = np.arange(len(labels_array))
    logits[rows, predicted_array] = logits.max(axis=1) + rng.uniform(0.2, 4.0, len(labels_array))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32), labels_array


def _lists(got: Any, *, what: str, classes: int) -> list[list[int]]:
    rows = got.tolist() if isinstance(got, np.ndarray) else got
    if not isinstance(rows, (list, tuple)) or len(rows) != classes:
        raise CheckFailed(f"{what} should give one list of indices per class ({classes}), got {describe_value(got)}")
    found = []
    for c, row in enumerate(rows):
        values = np.asarray(row, dtype=np.float64).ravel() if not isinstance(row, dict) else None
        if values is None or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise CheckFailed(f"{what} gives {describe_value(row)} for class {c}; it should be indices of samples")
        found.append([int(v) for v in values])
    return found


def expect_top_k_function(nb: KernelChannel, function: str, *, correct: bool, k: int = 5, classes: int = 10,
                          seed: int = 4179, either_grouping: bool = False) -> str:
    """Fail unless ``function(probs, labels, k)`` gives, per true class, the ``k`` most
    confident right (``correct``) or wrong answers, highest first. With ``either_grouping``
    wrong answers grouped by the class predicted are accepted too ("for each class" read
    the other way); a note saying so is returned."""
    probs, labels = top_k_inputs(seed, classes, k)
    what = f"{function}(probs, labels, k={k})"
    got = _lists(call(nb, function, probs, labels, k=k), what=what, classes=classes)
    if got == top_k(probs, labels, k, correct=correct):
        return ""
    if either_grouping and got == top_k(probs, labels, k, correct=correct, by="predicted"):
        return "grouped by the class predicted, not the true class: accepted (the handout's 'for each class')"
    want = top_k(probs, labels, k, correct=correct)
    c = next(c for c in range(classes) if got[c] != want[c])
    kind = "classified correctly" if correct else "misclassified"
    raise CheckFailed(f"{what} on the grader's {len(labels)} samples gives {got[c]} for class {c}; the {k} samples "
                      f"of that class {kind} with the highest softmax score, highest first, are {want[c]}")


def expect_top_k_result(got: Any, probs: np.ndarray, labels: np.ndarray, *, what: str, correct: bool, k: int = 5,
                        either_grouping: bool = False, tol: float = 1e-3) -> None:
    """Fail unless ``got`` (the notebook's own result) picks, per class, samples whose
    scores are the ``k`` highest of the grader's recomputation (``probs`` from the
    notebook's model, its ``labels``), within ``tol`` where arithmetic differs."""
    classes = probs.shape[1]
    rows = _lists(got, what=what, classes=classes)
    predicted, score = probs.argmax(axis=1), probs.max(axis=1)
    # Right or wrong up to a tie within tol: the notebook's own run may have flipped it.
    of_label = probs[np.arange(len(labels)), labels]
    others = np.where(np.eye(classes, dtype=bool)[labels], -np.inf, probs).max(axis=1)
    near_right, near_wrong = of_label >= score - tol, others >= of_label - tol
    sure_right, sure_wrong = of_label > others + tol, others > of_label + tol
    problems = []
    for by in ("true", "predicted") if either_grouping else ("true",):
        want = top_k(probs, labels, k, correct=correct, by=by)
        group = labels if by == "true" else predicted
        near = [np.flatnonzero((group == c) & (near_right if correct else near_wrong)) for c in range(classes)]
        sure = [int(np.sum((group == c) & (sure_right if correct else sure_wrong))) for c in range(classes)]
        problems = [c for c in range(classes)
                    if not _same_picks(rows[c], want[c], near[c], min(k, sure[c]), score, k, tol)]
        if not problems:
            return
    c = problems[0]
    kind = "classified correctly" if correct else "misclassified"
    raise CheckFailed(f"{what} holds {rows[c]} for class {c}; with the grader's run of the model on those images "
                      f"the {k} samples of that class {kind} with the highest softmax score are "
                      f"{top_k(probs, labels, k, correct=correct)[c]}")


def _same_picks(got: list[int], want: list[int], near: np.ndarray, fewest: int, score: np.ndarray, k: int,
                tol: float) -> bool:
    """The same picks up to ties within ``tol``: distinct samples of the class, right (or
    wrong) as asked or within a tie of it, as many as there are (``fewest`` are so beyond a
    tie), whose scores are the grader's top ones, or the top ones of those within a tie."""
    if len(set(got)) != len(got) or not set(got) <= set(near.tolist()):
        return False
    if not fewest <= len(got) <= min(k, len(near)):
        return False
    mine = np.sort(score[got])[::-1]
    tops = (score[want], np.sort(score[near])[::-1])
    return any(len(top) >= len(mine) and np.allclose(mine, top[:len(mine)], atol=tol) for top in tops)
