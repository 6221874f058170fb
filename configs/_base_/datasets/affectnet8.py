# AffectNet-8 (expression codes 0..7, with Contempt) at 112x112; the test
# split is the official validation set (3,999-4,000 images).
_base_ = ['./affectnet7.py']

num_classes = 8
data_preprocessor = dict(num_classes=num_classes)
train_dataloader = dict(dataset=dict(num_classes=num_classes))
val_dataloader = dict(dataset=dict(num_classes=num_classes))
test_dataloader = val_dataloader
