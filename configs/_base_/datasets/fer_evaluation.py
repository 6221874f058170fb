# Top-1, mean per-class accuracy (macro recall) and the confusion matrix.
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='SingleLabelMetric', items=('recall', ), average='macro'),
    dict(type='ConfusionMatrix'),
]
test_evaluator = val_evaluator
