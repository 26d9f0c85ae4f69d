"""Data: loaders (built-in datasets), splits, device-side preprocessing, frozen-feature cache."""
