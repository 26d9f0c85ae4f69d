"""Data: loaders (built-in, your own images, torchvision transfer datasets), splits, device-side
preprocessing, the decoded-image and frozen-feature caches."""
