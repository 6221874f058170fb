# LA-Net, MS-Celeb-1M ResNet-18, RAF-DB with EAC's public 30% noise file
# (noise03.txt): the official recipe on 2 GPUs x 64 images (global batch
# 128; the label distributions are estimated over it), 80 epochs, 224 px,
# LA-Net's 19 HRNet landmarks per image, written into the RAF-DB tree by
# tools/dataset_converters/rafdb_landmarks.py.
_base_ = [
    '../_base_/datasets/rafdb.py', './_base_/lanet_schedule.py',
    './_base_/lanet_resnet18.py',
    './_base_/lanet_transforms.py'
]

train_pipeline = {{_base_.lanet_train_pipeline}}
test_pipeline = {{_base_.lanet_test_pipeline}}
train_dataloader = dict(
    batch_size=64,
    # the official DataLoader drops the last partial batch; the queue takes
    # whole global batches
    drop_last=True,
    sampler={{_base_.lanet_sampler}},
    dataset=dict(
        landmarks='aligned',
        noise_file='EmoLabel/noise03.txt',
        pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
