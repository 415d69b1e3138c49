"""Training (requires the ``train`` extra: torch, torchvision, timm, albumentations, ...)."""
