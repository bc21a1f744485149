"""Data: the embedded default data set (scikit-learn's digits) and its two-view augmentation."""

from .digits import DigitsSplit, DigitsTwoViews, load_digits_split

__all__ = ["DigitsSplit", "DigitsTwoViews", "load_digits_split"]
