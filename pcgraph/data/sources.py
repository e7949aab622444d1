"""Registered datasets (names, options, fields)."""

from __future__ import annotations

from typing import List, Literal, Optional

from pydantic import Field, PositiveInt

from .registry import Dataset, DatasetOptions, register

IMAGE_FIELDS = ("image", "label")
TEXT_FIELDS = ("tokens", "next_tokens")


class ImageOptions(DatasetOptions):
    subset: Optional[PositiveInt] = Field(None, description="use the first N training examples")
    test_subset: Optional[PositiveInt] = Field(None, description="use the first N test examples")


@register
class Digits(Dataset):
    name = "digits"
    Options = ImageOptions
    fields = IMAGE_FIELDS
    description = "scikit-learn's 8x8 handwritten digits (1797 images), fixed stratified 80/20 split"


@register
class MNIST(Dataset):
    name = "mnist"
    Options = ImageOptions
    fields = IMAGE_FIELDS
    description = "MNIST 28x28 digits (IDX files, gzipped or not)"


@register
class FashionMNIST(Dataset):
    name = "fashion_mnist"
    Options = ImageOptions
    fields = IMAGE_FIELDS
    description = "Fashion-MNIST 28x28 (IDX files, gzipped or not)"


@register
class CIFAR10(Dataset):
    name = "cifar10"
    Options = ImageOptions
    fields = IMAGE_FIELDS
    description = "CIFAR-10 32x32x3 (the python batch files)"


class TextOptions(DatasetOptions):
    files: Optional[List[str]] = Field(None, description="text files or folders (default: the data directory's text/ folder)")
    vocab_size: PositiveInt = 8001
    seq_len: PositiveInt = 32
    test_fraction: float = Field(0.05, gt=0, lt=1)
    subset: Optional[PositiveInt] = None
    test_subset: Optional[PositiveInt] = None
    model_type: Literal["bpe", "unigram"] = "bpe"
    max_chars: Optional[PositiveInt] = Field(None, description="read at most this many characters (quick runs)")


@register
class Text(Dataset):
    name = "text"
    Options = TextOptions
    fields = TEXT_FIELDS
    description = "plain-text files -> sentencepiece tokens in windows of seq_len"


class SyntheticOptions(DatasetOptions):
    n_train: PositiveInt = 1024
    n_test: PositiveInt = 256
    seed: int = 0
    noise: float = Field(0.1, ge=0)


@register
class Synthetic(Dataset):
    name = "synthetic"
    Options = SyntheticOptions
    fields = None
    description = "random inputs and a fixed random teacher network's outputs, shaped by the bound nodes"


class SyntheticTextOptions(DatasetOptions):
    vocab_size: PositiveInt = 64
    seq_len: PositiveInt = 32
    n_train: PositiveInt = 1024
    n_test: PositiveInt = 256
    seed: int = 0


@register
class SyntheticText(Dataset):
    name = "synthetic_text"
    Options = SyntheticTextOptions
    fields = TEXT_FIELDS
    description = "token sequences from a fixed random Markov chain"
