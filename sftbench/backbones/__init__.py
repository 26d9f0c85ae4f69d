"""Backbones: timm and torchvision models with their weights (hub, file, offline packages), depth stages."""
