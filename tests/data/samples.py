"""What the data tests' tiny real-format datasets hold (the writers are :mod:`hpml.data.formats`)."""

from __future__ import annotations

CIFAR_TRAIN_PER_BATCH = 2  # images per data_batch_k (5 batches)
CIFAR_TEST = 3
WNIDS = ["n01440764", "n01443537", "n01484850"]  # the first three ImageNet classes
AMAZON_ROWS = [
    ("2", "Great stuff", "Works as advertised, would buy again."),
    ("1", "Broken", 'Arrived broken; the "support" never answered.'),
    ("2", "Love it", "My kids love it, sturdy and fun."),
    ("1", "Waste of money", "Stopped working after a week."),
    ("2", "Solid", "Good value, fast shipping, nice box."),
    ("1", "Meh, then worse", "Cheap plastic, returned it, refund took a month."),
]
