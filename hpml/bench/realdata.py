"""Where rows that read real files find them: ``--data-dir``, or small files in the real formats written
once per session (the Amazon CSVs with their own ``spiece.model``, so the tokenizer cache gets no entry per session)."""

from __future__ import annotations

from pathlib import Path

from hpml.data import dataset_info
from hpml.data.formats import (
    AMAZON_FOLDERS, TOKENIZER_FILE, write_amazon, write_cifar10, write_cifar100, write_imagenet,
)
from hpml.data.tokenizer import Tokenizer

#: Per dataset: write ``n`` train samples under ``root``, sized and seeded by profile ``p``.
WRITERS = {
    "cifar10": lambda root, n, p: write_cifar10(root, n, p.seed),
    "cifar100": lambda root, n, p: write_cifar100(root, n, p.seed),
    "imagenet": lambda root, n, p: write_imagenet(root, n, p.jpeg_size, p.seed),
    "amazon_polarity": lambda root, n, p: write_amazon(root, "amazon_polarity", n, p.seed),
    "amazon_full": lambda root, n, p: write_amazon(root, "amazon_full", n, p.seed),
}


class RealData:
    """Where each dataset's real files are: the user's ``--data-dir``, or small files
    written on first use into ``scratch`` (once per session and dataset)."""

    def __init__(self, data_dir: Path | None, scratch: Path, profile, samples: int) -> None:
        self.data_dir = data_dir
        self.scratch = scratch
        self.profile = profile
        self.samples = samples  # train samples to write per dataset (enough for one measured call)
        self._written: set[str] = set()

    @property
    def written(self) -> bool:
        """True when the files are benchmark-written stand-ins, not the user's data."""
        return self.data_dir is None

    def root(self, name: str) -> Path | None:
        """The data_dir to pass to ``create_dataset`` (None for bundled datasets like digits)."""
        if name not in WRITERS:  # bundled with a package (digits): no files needed
            return None
        if self.data_dir is not None:
            return self.data_dir
        if name not in self._written:
            WRITERS[name](self.scratch, self.samples, self.profile)
            self._written.add(name)
        return self.scratch

    def tokenizer(self, name: str) -> Tokenizer | None:
        """The tokenizer written with benchmark-made text files; None = hpml's default."""
        if self.data_dir is not None or dataset_info(name).modality != "text":
            return None
        root = self.root(name)
        assert root is not None
        return Tokenizer.from_file(root / AMAZON_FOLDERS[name] / TOKENIZER_FILE)
