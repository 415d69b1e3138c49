"""Datasets: adapters, writer-disjoint splits, verification pairs, lazy loading, synthetic data."""

from inkproof.data.adapters import FORMATS, detect_format, discover_datasets, load_dataset
from inkproof.data.loader import ImageLoader
from inkproof.data.location import data_root
from inkproof.data.pairs import PairSet, SignaturePair, make_pairs, read_pair_file, write_pairs
from inkproof.data.records import SignatureDataset, SignatureRecord
from inkproof.data.splits import WriterSplit, kfold_writers, split_writers, subset_pairs, subset_writers

__all__ = [
    "FORMATS",
    "ImageLoader",
    "PairSet",
    "SignatureDataset",
    "SignaturePair",
    "SignatureRecord",
    "WriterSplit",
    "data_root",
    "detect_format",
    "discover_datasets",
    "kfold_writers",
    "load_dataset",
    "make_pairs",
    "read_pair_file",
    "split_writers",
    "subset_pairs",
    "subset_writers",
    "write_pairs",
]
