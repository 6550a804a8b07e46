"""TransUNet re-implementation: ``network`` (R50+ViT encoder, cascaded upsampler) and ``method``
(the registered plug-in with the paper's loss and SGD + poly schedule)."""

from benchmark.methods.transunet.method import TransUNet, TransUNetConfig

__all__ = ["TransUNet", "TransUNetConfig"]
