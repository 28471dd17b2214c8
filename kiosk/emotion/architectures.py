"""Emotion networks for 48×48 grey faces.

torchvision's ImageNet networks downsample 32× before the first residual block, which leaves a 48-pixel
face almost nothing; the adaptations below keep their blocks and change only the stem, as the
classification reference recipes do for CIFAR-sized inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models

from kiosk.emotion.labels import NUM_CLASSES


def _conv_bn(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class CompactFaceNet(nn.Module):
    """A small VGG-style network that trains in minutes on a CPU and serves a face in a millisecond."""

    def __init__(
        self, widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.3, double_first: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for i, width in enumerate(widths):
            layers.append(_conv_bn(in_ch, width))
            if i > 0 or double_first:
                layers.append(_conv_bn(width, width))
            layers.append(nn.MaxPool2d(2))
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_ch, NUM_CLASSES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18_face() -> nn.Module:
    """torchvision ResNet18 with a 3×3 stride-1 grey stem and no max-pool, for 48×48 faces."""
    net = models.resnet18(num_classes=NUM_CLASSES)
    net.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def vgg13_face() -> nn.Module:
    """VGG13 with batch norm for 48×48 faces (the VGG-class networks of the FER2013 literature): five stages of
    two 3×3 convolutions, then the compact network's small head (global pooling, dropout, one linear layer)."""
    return CompactFaceNet(widths=(64, 128, 256, 512, 512), dropout=0.5, double_first=True)


def densenet121_face() -> nn.Module:
    """torchvision DenseNet121 with a 3×3 stride-1 grey stem and no pooling in the stem."""
    net = models.densenet121(num_classes=NUM_CLASSES)
    net.features.conv0 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
    net.features.pool0 = nn.Identity()
    return net


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "compact": CompactFaceNet,
    "compact-small": lambda: CompactFaceNet(widths=(16, 32, 64, 128), dropout=0.2),
    "resnet18": resnet18_face,
    "densenet121": densenet121_face,
    "vgg13": vgg13_face,
}


def build(name: str) -> nn.Module:
    """Build an untrained network by its recipe name."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}") from None


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
