"""TransUNet network (Chen et al., arXiv 2102.04306): R50+ViT hybrid encoder, cascaded upsampler.

Data flow for an input of side S (a multiple of 16), widths as in the paper-scale config:

    image (B, 3, S, S)
    -> stem conv7x7/2-BN-ReLU                (B, 64, S/2, S/2)      skip 3
    -> maxpool/2, stage 1 (3 bottlenecks)    (B, 256, S/4, S/4)     skip 2
    -> stage 2 (4 bottlenecks, /2)           (B, 512, S/8, S/8)     skip 1
    -> stage 3 (9 bottlenecks, /2)           (B, 1024, S/16, S/16)
    -> 1x1 patch embedding + learned position embedding -> (B, S²/256, hidden)
    -> transformer layers (pre-norm MHSA + MLP), final LayerNorm
    -> reshape to (B, hidden, S/16, S/16)
    -> CUP: conv3x3-ReLU to 512, then 4 x [upsample x2, concatenate skip, conv3x3-ReLU]
       with (256, 128, 64, 16) channels and skips 1, 2, 3, none  -> (B, 16, S, S)
    -> segmentation head conv3x3 -> logits (B, 1, S, S)

As in the ViT "R50+ViT" hybrid the paper builds on, ResNet-50's fourth stage is removed and its
blocks moved to stage 3 (3, 4, 9 blocks), and the patch size on the CNN grid is 1.

Paper versus public code (github.com/Beckschen/TransUNet); this module follows the paper:
- CUP block: the paper says "a 2x upsampling operator, a 3x3 convolution layer, and a ReLU
  layer"; the public code uses two conv3x3-BatchNorm-ReLU per block. Here: one conv3x3-ReLU.
- The public code's ResNet is BiT's (weight-standardised convolutions + GroupNorm, required by
  its ImageNet-21k checkpoint); the paper says ResNet-50. Here: torchvision's ResNet-50
  bottleneck (BatchNorm, stride in the 3x3 convolution), since no checkpoint is loaded.
Where the paper is silent the public code is followed: a conv3x3 segmentation head, bilinear
upsampling, skips taken after the stem and stages 1 and 2. Position embeddings start from a
truncated normal (std 0.02, the ViT initialisation) because nothing pretrained is loaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bottleneck_stage(in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` torchvision ResNet bottlenecks; (B, in, H, W) -> (B, 4*width, H/stride, W/stride)."""
    from torchvision.models.resnet import Bottleneck

    out_channels = width * Bottleneck.expansion
    downsample = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
    )
    layers = [Bottleneck(in_channels, width, stride=stride, downsample=downsample)]
    layers += [Bottleneck(out_channels, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class HybridResNet(nn.Module):
    """The CNN half of the encoder: (B, 3, H, W) -> (B, 4*widths[2], H/16, W/16) and three skips."""

    def __init__(self, stem_width: int, stage_widths: tuple[int, ...], stage_blocks: tuple[int, ...]):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = [stem_width] + [4 * width for width in stage_widths]
        self.stages = nn.ModuleList(
            bottleneck_stage(channels[index], stage_widths[index], stage_blocks[index], stride=1 if index == 0 else 2)
            for index in range(3)
        )
        #: channels of the skips at 1/8, 1/4, 1/2 (deepest first) and of the output at 1/16.
        self.skip_channels = (channels[2], channels[1], channels[0])
        self.out_channels = channels[3]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        half = self.stem(images)
        quarter = self.stages[0](self.pool(half))
        eighth = self.stages[1](quarter)
        return self.stages[2](eighth), [eighth, quarter, half]


class TransformerEncoder(nn.Module):
    """(B, C, h, w) CNN features -> (B, hidden, h, w) after ViT layers on the h*w tokens."""

    def __init__(
        self,
        in_channels: int,
        grid: int,
        hidden: int,
        layers: int,
        heads: int,
        mlp_dim: int,
        dropout: float,
        attention_dropout: float,
    ):
        super().__init__()
        from timm.models.vision_transformer import Block

        self.grid = grid
        self.patch_embedding = nn.Conv2d(in_channels, hidden, kernel_size=1)  # patch size 1 on the CNN grid
        self.position_embedding = nn.Parameter(torch.zeros(1, grid * grid, hidden))
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            *(
                Block(
                    hidden,
                    heads,
                    mlp_ratio=mlp_dim / hidden,
                    qkv_bias=True,
                    proj_drop=dropout,
                    attn_drop=attention_dropout,
                    norm_layer=nn.LayerNorm,
                )
                for _ in range(layers)
            )
        )
        self.norm = nn.LayerNorm(hidden, eps=1e-6)

    def position(self, height: int, width: int) -> torch.Tensor:
        """(1, height*width, hidden); resized bilinearly when the grid differs from training's."""
        if (height, width) == (self.grid, self.grid):
            return self.position_embedding
        square = self.position_embedding.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        resized = F.interpolate(square, size=(height, width), mode="bilinear", align_corners=False)
        return resized.flatten(2).transpose(1, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embedding(features)
        batch, hidden, height, width = tokens.shape
        tokens = self.dropout(tokens.flatten(2).transpose(1, 2) + self.position(height, width))
        tokens = self.norm(self.layers(tokens))
        return tokens.transpose(1, 2).reshape(batch, hidden, height, width)


def conv3x3_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class CascadedUpsampler(nn.Module):
    """CUP: (B, hidden, H/16, W/16) + skips (1/8, 1/4, 1/2) -> (B, decoder_channels[-1], H, W)."""

    def __init__(
        self, hidden: int, head_channels: int, decoder_channels: tuple[int, ...], skip_channels: tuple[int, ...]
    ):
        super().__init__()
        self.entry = conv3x3_relu(hidden, head_channels)
        inputs = (head_channels,) + tuple(decoder_channels[:-1])
        skips = tuple(skip_channels) + (0,) * (len(decoder_channels) - len(skip_channels))
        self.blocks = nn.ModuleList(
            conv3x3_relu(inputs[i] + skips[i], decoder_channels[i]) for i in range(len(decoder_channels))
        )

    def forward(self, hidden: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = self.entry(hidden)
        for index, block in enumerate(self.blocks):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            if index < len(skips):
                x = torch.cat([x, skips[index]], dim=1)
            x = block(x)
        return x


class TransUNetNetwork(nn.Module):
    """float32 (B, 3, H, W) in [-1, 1], H and W multiples of 16 -> logits (B, 1, H, W)."""

    def __init__(self, config):
        super().__init__()
        self.cnn = HybridResNet(config.stem_width, config.stage_widths, config.stage_blocks)
        self.transformer = TransformerEncoder(
            self.cnn.out_channels,
            config.image_size // 16,
            config.hidden_size,
            config.num_layers,
            config.num_heads,
            config.mlp_dim,
            config.dropout,
            config.attention_dropout,
        )
        self.decoder = CascadedUpsampler(
            config.hidden_size, config.head_channels, config.decoder_channels, self.cnn.skip_channels
        )
        self.head = nn.Conv2d(config.decoder_channels[-1], 1, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] % 16 or images.shape[-2] % 16:
            raise ValueError(f"TransUNet needs image sides divisible by 16, got {tuple(images.shape[-2:])}")
        features, skips = self.cnn(images)
        return self.head(self.decoder(self.transformer(features), skips))
