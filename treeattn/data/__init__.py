"""Data for image restoration: I/O, degradations, datasets, embedded sets and benchmarks."""

from treeattn.data.benchmark import (
    PROTOCOLS,
    BenchmarkTable,
    Protocol,
    evaluate_folder,
    evaluate_pairs,
    get_protocol,
)
from treeattn.data.datasets import DegradedFolder, DualPixelFolder, PairedFolder
from treeattn.data.degradations import (
    AWGN,
    DEGRADATIONS,
    JPEG,
    BayerMosaic,
    BicubicDown,
    Degradation,
    build_degradation,
)
from treeattn.data.embedded import embedded_dir, sr_lr_dir, sr_test_dir, test_dir, train_dir
from treeattn.data.io import read_image, write_image
from treeattn.data.resize import imresize

__all__ = [
    "AWGN",
    "DEGRADATIONS",
    "JPEG",
    "PROTOCOLS",
    "BayerMosaic",
    "BenchmarkTable",
    "BicubicDown",
    "Degradation",
    "DegradedFolder",
    "DualPixelFolder",
    "PairedFolder",
    "Protocol",
    "build_degradation",
    "embedded_dir",
    "evaluate_folder",
    "evaluate_pairs",
    "get_protocol",
    "imresize",
    "read_image",
    "sr_lr_dir",
    "sr_test_dir",
    "test_dir",
    "train_dir",
    "write_image",
]
